import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote

/// Runs a program to completion (synchronously: Foundation.Process is only safe outside async
/// code) and returns its exit status and output.
@discardableResult
func sh(_ argv: [String], cwd: String, env: [String: String]? = nil, stdin: String? = nil) -> (code: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    p.currentDirectoryURL = URL(fileURLWithPath: cwd)
    if let env { p.environment = env }
    // Output goes to files: no pipe can fill up and deadlock a chatty child.
    let tmp = NSTemporaryDirectory() + "sh-" + UUID().uuidString
    FileManager.default.createFile(atPath: tmp + ".out", contents: nil)
    FileManager.default.createFile(atPath: tmp + ".err", contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: tmp + ".out")
        try? FileManager.default.removeItem(atPath: tmp + ".err")
    }
    p.standardOutput = FileHandle(forWritingAtPath: tmp + ".out")
    p.standardError = FileHandle(forWritingAtPath: tmp + ".err")
    if let stdin {
        let inPipe = Pipe()
        p.standardInput = inPipe
        inPipe.fileHandleForWriting.write(Data(stdin.utf8))
        try? inPipe.fileHandleForWriting.close()
    }
    do { try p.run() } catch { return (127, "", "\(error)") }
    p.waitUntilExit()
    let outData = FileManager.default.contents(atPath: tmp + ".out") ?? Data()
    let errData = FileManager.default.contents(atPath: tmp + ".err") ?? Data()
    return (p.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// A real git repository in a temp directory, made with the git CLI.
final class TempRepo {
    let path: String

    init(file: StaticString = #filePath, line: UInt = #line) throws {
        let base = NSTemporaryDirectory() + "repro-test-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        path = (base as NSString).resolvingSymlinksInPath
        git("init", "-q", "-b", "main")
        git("config", "user.email", "test@example.org")
        git("config", "user.name", "Repro Test")
        git("config", "commit.gpgsign", "false")
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func git(_ args: String...) -> String {
        let r = sh(["git"] + args, cwd: path)
        if r.code != 0 { XCTFail("git \(args.joined(separator: " ")) failed: \(r.err)") }
        return r.out
    }

    func write(_ rel: String, _ text: String, executable: Bool = false) {
        let full = path + "/" + rel
        try? FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: full, contents: Data(text.utf8))
        if executable { chmod(full, 0o755) }
    }

    func read(_ rel: String) -> String? {
        (try? String(contentsOfFile: path + "/" + rel, encoding: .utf8))
    }

    /// Copies a script from fixtures/tests into the repo.
    func addFixture(_ name: String, as rel: String) {
        let src = TestPaths.fixtures + "/tests/" + name
        let text = (try? String(contentsOfFile: src, encoding: .utf8)) ?? ""
        write(rel, text, executable: true)
    }

    /// Commits everything. A test repository is the user's own: settings it commits in
    /// .repro.yaml that send tokens or results somewhere are accepted, as its user would with
    /// `repro config trust` (`acceptSettings: false` leaves them waiting, as in a clone).
    func commitAll(_ message: String = "commit", acceptSettings: Bool = true) {
        git("add", "-A")
        git("commit", "-q", "-m", message)
        if acceptSettings, FileManager.default.fileExists(atPath: path + "/.repro.yaml") {
            _ = repro(["config", "trust"], cwd: path)
        }
    }

    /// A repo with the seeded simulation committed and a spec for it.
    static func seeded(spec: String = TempRepo.defaultSpec) throws -> TempRepo {
        let repo = try TempRepo()
        repo.addFixture("seeded.sh", as: "sim/seeded.sh")
        repo.write("README.md", "notes\n")
        repo.write("data/dose.csv", "t,dose\n0,2.0\n")
        repo.write("sim.yaml", spec)
        repo.commitAll("initial")
        return repo
    }

    static let defaultSpec = """
        name: seeded
        command: [sim/seeded.sh, "{params.n}"]
        code: [sim/]
        inputs: [data/dose.csv]
        outputs: [result.json, "traj/*.csv"]
        params: {n: 10, label: demo}
        seed: 42
        solver: {rtol: 1e-6, atol: 1e-9}
        env_passthrough: [COUNTER_FILE]

        """
}

enum TestPaths {
    /// The package root, found from this file's location.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let fixtures = root + "/fixtures"

    /// The `repro` binary built beside the test bundle.
    static let repro: String = {
        if let env = ProcessInfo.processInfo.environment["REPRO_BIN"] { return env }
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
        for candidate in [bundleDir + "/repro", bundleDir + "/../repro", root + "/.build/debug/repro"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return root + "/.build/debug/repro"
    }()
}

/// Runs the repro CLI in `cwd`.
@discardableResult
func repro(_ args: [String], cwd: String, env extra: [String: String] = [:]) -> (code: Int32, out: String, err: String) {
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "REPRO_STORE")
    for (k, v) in extra { env[k] = v }
    return sh([TestPaths.repro] + args, cwd: cwd, env: env)
}

/// Runs the library's Runner directly (no CLI process).
func runSpec(
    _ repo: TempRepo, spec: String = "sim.yaml", set: [String] = [], noCache: Bool = false, allowDirty: Bool = false,
    env: [String: String] = [:]
) throws -> RunOutcome {
    var e = ProcessInfo.processInfo.environment
    e.removeValue(forKey: "REPRO_STORE")
    for (k, v) in env { e[k] = v }
    var req = RunRequest(specPath: repo.path + "/" + spec, environment: e)
    req.overrides = set
    req.noCache = noCache
    req.allowDirty = allowDirty
    return try Runner(req).run()
}

/// Parses JSON text, failing the test when it is not JSON.
func parseJSON(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> JSONValue {
    do { return try JSONParser.parse(text) } catch {
        XCTFail("not JSON: \(error)\n\(text)", file: file, line: line)
        return .null
    }
}

/// Starts the `repro` binary without waiting for it (to interrupt or race it).
func launchRepro(
    _ args: [String], cwd: String, env extra: [String: String] = [:], stderrFile: String? = nil, stdoutFile: String? = nil
) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: TestPaths.repro)
    p.arguments = args
    p.currentDirectoryURL = URL(fileURLWithPath: cwd)
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "REPRO_STORE")
    for (k, v) in extra { env[k] = v }
    p.environment = env
    if let stdoutFile {
        FileManager.default.createFile(atPath: stdoutFile, contents: nil)
        p.standardOutput = FileHandle(forWritingAtPath: stdoutFile)
    } else {
        p.standardOutput = FileHandle.nullDevice
    }
    if let stderrFile {
        FileManager.default.createFile(atPath: stderrFile, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: stderrFile)
    } else {
        p.standardError = FileHandle.nullDevice
    }
    try p.run()
    return p
}

/// A spec env line and a file where fixtures/tests/slow.sh writes its sleep's pid.
func slowPidFile() -> String { NSTemporaryDirectory() + "slow-" + UUID().uuidString + ".pid" }

/// Whether the process whose pid is in `file` is gone (it must have written one).
/// Every caller asserts the process was killed: SIGKILL is delivered asynchronously, so a
/// loaded machine may not have ended it at the instant the kill returned. Waits up to 5 s.
func pidFileProcessIsGone(_ file: String) -> Bool {
    guard let text = try? String(contentsOfFile: file, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    else { return false }
    let deadline = Date().addingTimeInterval(5)
    while true {
        // A zombie is gone too: it is only waiting for its parent to read its status.
        if kill(pid, 0) != 0 { return errno == ESRCH }
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
        if stat.split(separator: " ").dropFirst(2).first == "Z" { return true }
        if Date() > deadline { return false }
        usleep(10_000)
    }
}

/// A run's outputs (`repro run --json`, `repro show --json`) as name → SHA-256.
func outputHashes(_ json: JSONValue) -> [String: String] {
    var out: [String: String] = [:]
    for o in json["outputs"]?.arrayValue ?? [] { out[o["name"]?.stringValue ?? ""] = o["sha256"]?.stringValue }
    return out
}

extension TempRepo {
    /// The example simulation (fixtures/dna-repair) as sim.yaml and sim.py, not committed.
    func writeDNARepair(population: Int) throws {
        write("sim.py", try String(contentsOfFile: TestPaths.fixtures + "/dna-repair/sim.py", encoding: .utf8))
        write("sim.yaml", """
            name: dna-repair
            command: [python3, sim.py]
            code: [sim.py]
            outputs: [result.json, "traj/*.csv"]
            params: {population_size: \(population), dose_gy: 2.0, pathways: [NHEJ, HR], t_end_h: 24}
            seed: 42
            solver: {rtol: 1e-6, atol: 1e-9, method: dopri5}
            timeout: 10m

            """)
    }

    /// Runs the same sweep locally in a clone and checks every point of `points` (from
    /// `repro sweep --json` here) has the same outputs there.
    func assertSweepMatchesLocalClone(_ points: [JSONValue], env: [String: String], file: StaticString = #filePath, line: UInt = #line) {
        let clone = path + "-local"
        defer { try? FileManager.default.removeItem(atPath: clone) }
        XCTAssertEqual(sh(["git", "clone", "-q", path, clone], cwd: "/").code, 0, file: file, line: line)
        let local = repro(["sweep", "sweep.yaml", "--backend", "local", "--json"], cwd: clone, env: env)
        XCTAssertEqual(local.code, 0, local.err, file: file, line: line)
        let theirs = parseJSON(local.out)["runs"]?.arrayValue ?? []
        for p in points {
            let key = p["key"]?.stringValue ?? ""
            let mine = outputHashes(parseJSON(repro(["show", p["run_id"]?.stringValue ?? "", "--json"], cwd: path, env: env).out))
            let other = theirs.first { $0["key"]?.stringValue == key }
            let theirOutputs = outputHashes(parseJSON(repro(["show", other?["run_id"]?.stringValue ?? "", "--json"], cwd: clone, env: env).out))
            XCTAssertEqual(mine, theirOutputs, "point \(key.prefix(12))", file: file, line: line)
            XCTAssertFalse(mine.isEmpty, file: file, line: line)
        }
    }
}

/// Lines in a counter file that fixtures append to (0 when it does not exist yet).
func lineCount(_ path: String) -> Int {
    (try? String(contentsOfFile: path, encoding: .utf8))?.split(separator: "\n").count ?? 0
}

/// Some tests need parts of the test environment that scripts/test.sh installs and starts (the
/// SLURM cluster with slurmrestd and an S3 server, Chromium, botocore). On a laptop without
/// them those tests skip, saying why, so the rest of the suite runs; with
/// REPRO_REQUIRE_TEST_ENV=1 (scripts/test.sh sets it in CI) a missing part is a failure, so
/// CI can never pass by skipping. The only way tests skip.
func missingTestEnvironment(_ reason: String, file: StaticString = #filePath, line: UInt = #line) -> XCTSkip {
    if ProcessInfo.processInfo.environment["REPRO_REQUIRE_TEST_ENV"] == "1" { XCTFail(reason, file: file, line: line) }
    return XCTSkip(reason)
}

/// The SLURM tests need the single-node cluster (scripts/slurm-test-cluster.sh start).
func requireSlurmCluster() throws {
    let r = sh(["scontrol", "ping"], cwd: "/")
    if r.code == 0 && r.out.contains("UP") { return }
    throw missingTestEnvironment(
        "no SLURM cluster is reachable (scontrol ping: \(r.out + r.err)); start one with scripts/slurm-test-cluster.sh start")
}

/// The report's browser test needs headless Chromium (Debian's `chromium`, which
/// scripts/test.sh installs). Without it the test skips, saying why; in CI it fails.
func requireChromium() throws -> String {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    where FileManager.default.isExecutableFile(atPath: candidate) {
        return candidate
    }
    throw missingTestEnvironment("headless Chromium is not installed (apt-get install chromium); scripts/test.sh installs it")
}

/// A private S3-compatible server (moto, from PyPI) on a free loopback port, for one test
/// class: tests may stop it to see what a dead endpoint does. moto does not check signatures;
/// the signing tests compare with botocore instead.
final class MotoServer {
    let port: Int
    var process: Process
    var endpoint: String { "http://127.0.0.1:\(port)" }
    /// What a client needs to reach it (dummy keys: moto accepts any).
    var env: [String: String] {
        ["AWS_ACCESS_KEY_ID": "AKIDREPROTEST", "AWS_SECRET_ACCESS_KEY": "reprotestsecret", "AWS_REGION": "us-east-1",
         "AWS_ENDPOINT_URL_S3": endpoint]
    }

    /// A new server on `port` (a fixed one: to bring a stopped server back where clients look).
    init(port fixed: Int? = nil) throws {
        var lastError = ""
        for _ in 0..<5 {
            // A port the kernel says is free now (a random one could be another test's server:
            // a probe answered by it made a test talk S3 to the Azure contract server).
            let port = fixed ?? freeLoopbackPort()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-m", "moto.server", "-H", "127.0.0.1", "-p", String(port)]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline && p.isRunning {
                // Only moto answers /moto-api/data.json with 200 (-f); and the process we started
                // must still be alive (one that lost the port race exits).
                if sh(["curl", "-sf", "-o", "/dev/null", "http://127.0.0.1:\(port)/moto-api/data.json"], cwd: "/").code == 0,
                   p.isRunning {
                    self.port = port
                    self.process = p
                    return
                }
                usleep(100_000)
            }
            lastError = p.isRunning ? "did not answer in 15 s" : "exited with \(p.terminationStatus)"
            if p.isRunning { p.terminate() }
            p.waitUntilExit()
        }
        throw missingTestEnvironment("moto's server did not start (\(lastError)); pip install 'moto[server]' (scripts/deps.sh --test does)")
    }

    /// Starts it again on the same port (empty: moto keeps its state in memory).
    func restart() throws {
        stop()
        let again = try MotoServer(port: port)
        process = again.process
        again.detach()
    }

    /// Hands the process over (its deinit must not stop it).
    private var detached = false
    private func detach() { detached = true }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { if !detached { stop() } }

    func client(_ extra: [String: String] = [:]) throws -> S3Client {
        var e = env
        for (k, v) in extra { e[k] = v }
        return try S3Client(settings: AWSSettings(environment: e), retry: RetryPolicy(attempts: 3, baseDelay: 0.05))
    }
}

/// A loopback TCP port nobody is listening on: bound with port 0 (the kernel picks), then closed.
func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return Int.random(in: 20000..<30000) }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { ptr -> Bool in
            bind(fd, ptr, len) == 0 && getsockname(fd, ptr, &len) == 0
        }
    }
    guard bound else { return Int.random(in: 20000..<30000) }
    return Int(UInt16(bigEndian: addr.sin_port))
}
