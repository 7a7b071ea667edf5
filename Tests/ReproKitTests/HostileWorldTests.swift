import Synchronization
import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote
@testable import ReproStore

/// A simulation, a teammate's bucket or a node user must not reach beyond their lane: each
/// test reproduces one way they did, with the real binary, real stores and real processes.
final class HostileWorldTests: XCTestCase {
    /// Files and folders outside the repository that a simulation links into its output folder.
    private func plantOutside() throws -> (dir: String, file: String, check: () -> Void) {
        let base = NSTemporaryDirectory() + "outside-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: base + "/data/sub", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: base + "/data/a.csv", contents: Data("precious\n".utf8))
        FileManager.default.createFile(atPath: base + "/data/sub/b.csv", contents: Data("also precious\n".utf8))
        FileManager.default.createFile(atPath: base + "/lone.txt", contents: Data("lone\n".utf8))
        let check = {
            XCTAssertEqual(try? String(contentsOfFile: base + "/data/a.csv", encoding: .utf8), "precious\n")
            XCTAssertEqual(try? String(contentsOfFile: base + "/data/sub/b.csv", encoding: .utf8), "also precious\n")
            XCTAssertEqual(try? String(contentsOfFile: base + "/lone.txt", encoding: .utf8), "lone\n")
        }
        return (base + "/data", base + "/lone.txt", check)
    }

    /// `ln -s /some/dir "$REPRO_OUTDIR/inputs"` used to make repro empty /some/dir when it
    /// cleared the run slot. Links at the top, deeper down, and to files: only links go.
    func testCleaningAnOutputFolderNeverFollowsLinks() throws {
        let outside = try plantOutside()
        let repo = try TempRepo()
        repo.write(
            "sim.sh",
            """
            #!/bin/sh
            ln -s "$OUT_DIR" "$REPRO_OUTDIR/inputs"
            ln -s "$OUT_FILE" "$REPRO_OUTDIR/lone.txt"
            mkdir -p "$REPRO_OUTDIR/deep/er"
            ln -s "$OUT_DIR" "$REPRO_OUTDIR/deep/er/data"
            ln -s "$OUT_DIR/sub" "$REPRO_OUTDIR/deep/sub"
            echo "$1" > "$REPRO_OUTDIR/result.txt"

            """, executable: true)
        repo.write(
            "sim.yaml",
            "name: links\ncommand: [./sim.sh, \"{params.n}\"]\ncode: [sim.sh]\nparams: {n: 1}\noutputs: [result.txt]\nenv_passthrough: [OUT_DIR, OUT_FILE]\n")
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [2, 3, 4, 5]}\n")
        repo.commitAll()
        let env = ["OUT_DIR": outside.dir, "OUT_FILE": outside.file]
        let first = repro(["run", "sim.yaml"], cwd: repo.path, env: env)
        XCTAssertEqual(first.code, 0, first.err)
        outside.check()
        // The next run takes the same slot and empties what is left there.
        XCTAssertEqual(repro(["run", "sim.yaml", "--no-cache"], cwd: repo.path, env: env).code, 0)
        outside.check()
        let sweep = repro(["sweep", "sweep.yaml", "--jobs", "2"], cwd: repo.path, env: env)
        XCTAssertEqual(sweep.code, 0, sweep.err)
        outside.check()
        // The library's own removal: a link given as the tree itself, and a tree holding links.
        let tree = NSTemporaryDirectory() + "tree-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: tree + "/x", withIntermediateDirectories: true)
        symlink(outside.dir, tree + "/x/link")
        symlink(outside.dir, tree + ".link")
        FileIO.removeTree(tree + ".link")
        FileIO.emptyTree(tree + ".link")
        FileIO.removeTree(tree)
        outside.check()
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree))
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree + ".link"))
        // A run killed mid-way leaves its links in the slot; the next holder cleans up.
        repo.write("slow.sh", "#!/bin/sh\nln -s \"$OUT_DIR\" \"$REPRO_OUTDIR/inputs\"\necho $$ > \"$PID_FILE\"\nexec sleep 30\n", executable: true)
        let pidFile = slowPidFile()
        defer { unlink(pidFile) }
        repo.write("slow.yaml", "name: slow\ncommand: [./slow.sh]\ncode: [slow.sh]\nenv: {OUT_DIR: \(outside.dir), PID_FILE: \(pidFile)}\n")
        repo.commitAll()
        let slow = try launchRepro(["run", "slow.yaml"], cwd: repo.path)
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: pidFile) && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: pidFile), "the slow simulation never started")
        kill(slow.processIdentifier, SIGKILL)
        // The simulation too (Foundation's wait otherwise lasts until the orphan ends).
        if let pid = Int32((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") {
            kill(pid, SIGKILL)
        }
        slow.waitUntilExit()
        XCTAssertEqual(repro(["run", "sim.yaml", "--no-cache"], cwd: repo.path, env: env).code, 0)
        XCTAssertEqual(repro(["cache", "gc"], cwd: repo.path, env: env).code, 0)
        outside.check()
    }

    /// Sizes in a tar header come from a bucket: -1, 2^63-1 and 8 GiB used to trap (SIGILL).
    func testForgedTarSizesAreRefusedNamingTheEntry() throws {
        let dir = NSTemporaryDirectory() + "tar-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir + "/x", withIntermediateDirectories: true)
        defer { FileIO.removeTree(dir) }
        for size in ["-1", "9223372036854775807", "8589934592", "18446744073709551615", "12abc"] {
            let w = try Tar.Writer(path: dir + "/a.tar")
            // A pax header that sets the size of the entry after it.
            let pax = Array(Tar.paxRecord("size", size).utf8)
            try FileIO.writeAll(w.fd, Tar.block(name: "PaxHeaders/x", type: "x", mode: 0o644, size: Int64(pax.count), link: ""), path: dir)
            try FileIO.writeAll(w.fd, pax + [UInt8](repeating: 0, count: (512 - pax.count % 512) % 512), path: dir)
            try FileIO.writeAll(w.fd, Tar.block(name: "result.json", type: "0", mode: 0o644, size: 5, link: ""), path: dir)
            try FileIO.writeAll(w.fd, Array("hello".utf8) + [UInt8](repeating: 0, count: 507), path: dir)
            try w.finish()
            XCTAssertThrowsError(try Tar.extract(dir + "/a.tar", into: dir + "/x"), size) { e in
                XCTAssertTrue("\(e)".contains("result.json") && "\(e)".contains("claims a size"), "\(e)")
            }
        }
        // The ustar field too (octal, so a minus or a size past the archive's end).
        for field in ["-0000001", "77777777777"] {
            var block = Tar.block(name: "out.bin", type: "0", mode: 0o644, size: 1, link: "")
            for (i, c) in field.utf8.enumerated() { block[124 + i] = c }
            for i in 148..<156 { block[i] = UInt8(ascii: " ") }
            let sum = String(block.reduce(0) { $0 + Int($1) }, radix: 8)
            for (i, c) in (String(repeating: "0", count: 6 - sum.count) + sum).utf8.enumerated() { block[148 + i] = c }
            block[154] = 0
            try FileIO.writeNew(block + [UInt8](repeating: 0, count: 1536), to: dir + "/b.tar")
            XCTAssertThrowsError(try Tar.extract(dir + "/b.tar", into: dir + "/x"), field) { e in
                XCTAssertTrue("\(e)".contains("out.bin"), "\(e)")
            }
        }
    }

    /// Replays the tar fuzzing corpus (scripts/fuzz.sh tar adds to it): no archive may crash
    /// the reader or write outside the folder it extracts into.
    func testTarFuzzCorpusReplays() throws {
        let corpus = TestPaths.root + "/Tests/ReproKitTests/Corpus/tar"
        let names = try FileManager.default.contentsOfDirectory(atPath: corpus).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 25, "the corpus is missing")
        let base = NSTemporaryDirectory() + "tar-replay-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { FileIO.removeTree(base) }
        var extracted = 0
        for name in names {
            let root = base + "/root"
            FileIO.removeTree(root)
            mkdir(root, 0o755)
            if (try? Tar.extract(corpus + "/" + name, into: root, fileLimit: 1000)) != nil { extracted += 1 }
            XCTAssertEqual(FileIO.directoryNames(base), ["root"], name)
        }
        XCTAssertGreaterThan(extracted, 3)
    }
}

/// What a trusted signer or a bucket writer can put in the team cache, pulled by a teammate
/// (with TeamCacheTests' team: two clones, alice's and bob's keys trusted, a moto bucket).
extension TeamCacheTests {

    /// A's genuine run of sim.yaml, pushed signed by alice; the record as A's store holds it.
    func pushed(_ t: Team) throws -> RunRecord {
        let run = repro(["run", "sim.yaml", "--json"], cwd: t.a.path, env: envA(t))
        XCTAssertEqual(run.code, 0, run.err)
        XCTAssertEqual(repro(["push", "sim.yaml", "--key", t.keys + "/alice"], cwd: t.a.path, env: t.env).code, 0)
        let id = try XCTUnwrap(parseJSON(run.out)["run_id"]?.stringValue)
        return try XCTUnwrap(try Store(root: t.a.path + "/.repro").run(id: id))
    }

    /// Signs `record` with `signer` and puts its manifest (and run pointer) in the bucket.
    @discardableResult
    func plant(_ t: Team, _ record: RunRecord, signer: String = "alice", sizes: [String: Int64] = [:], name: String? = nil) throws -> String {
        let key = try Attestation.loadPrivate(t.keys + "/" + signer)
        var all = sizes
        for o in record.outputs where all[o.sha256] == nil { all[o.sha256] = o.size }
        let store = try Store(root: t.a.path + "/.repro")
        for h in record.blobHashes where all[h] == nil { all[h] = try store.blobSize(h) ?? 0 }
        let m = try CacheManifest.make(record: record, sizes: all, signingKey: key, pushedAt: Clock.iso8601(Clock.now()))
        let objectName = name ?? m.name
        _ = try t.client.put(m.envelope, bucket: t.bucket, key: "team/" + objectName)
        return objectName
    }

    func testForgedRecordsSignedByATrustedKeyAreRefused() throws {
        let t = try makeTeam()
        let genuine = try pushed(t)
        let result = try XCTUnwrap(genuine.outputs.first { $0.name == "result.json" })
        var forgeries: [(String, RunRecord, [String: Int64], String)] = []
        // Output names that climb out of the results folder into the repository and beyond.
        var climb = genuine
        climb.runId = "20991231-000000-0000000001"
        climb.outputs = [
            OutputFile(name: "../../../../pwned.txt", sha256: result.sha256, size: result.size),
            OutputFile(name: "../../../.git/config", sha256: result.sha256, size: result.size),
        ]
        forgeries.append(("climb", climb, [:], "is refused"))
        // An undeclared output name (the spec declares result.json and traj/*.csv).
        var undeclared = genuine
        undeclared.runId = "20991231-000000-0000000002"
        undeclared.outputs = [OutputFile(name: "notes.sh", sha256: result.sha256, size: result.size)]
        forgeries.append(("undeclared", undeclared, [:], "not among the declared outputs"))
        // Listed first by audit: a start in 2099.
        var future = genuine
        future.runId = "20991231-000000-0000000003"
        future.startedAt = "2099-01-01T00:00:00.000Z"
        future.finishedAt = "2099-01-01T00:00:01.000Z"
        forgeries.append(("future", future, [:], "in the future"))
        // Params of another point carried under this key.
        var otherPoint = genuine
        otherPoint.runId = "20991231-000000-0000000004"
        var config = genuine.config.objectValue ?? [:]
        config["params"] = .object(["n": .int(999), "label": .string("demo")])
        otherPoint.config = .object(config)
        otherPoint.configHash = Hashing.sha256Hex(otherPoint.config.canonicalBytes)
        forgeries.append(("other point", otherPoint, [:], "is not the key of its own"))
        // "succeeded (exit 1)".
        var exit1 = genuine
        exit1.runId = "20991231-000000-0000000005"
        exit1.exitCode = 1
        forgeries.append(("exit 1", exit1, [:], "claims success with exit code 1"))
        // A run id that is a path.
        var pathId = genuine
        pathId.runId = "../../other-team/important"
        forgeries.append(("path id", pathId, [:], "is not a run id"))

        // B already holds one blob (a run of its own writes the same stderr/result): a forged
        // size for a blob B has is caught even though nothing is downloaded.
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.label=other", "--json"], cwd: t.b, env: envB(t)).code, 0)
        // Only forgeries in the bucket (a store holding the genuine result skips its digest).
        for o in try t.client.list(bucket: t.bucket, prefix: "team/" + CacheManifest.folder(key: genuine.key)) {
            try t.client.delete(bucket: t.bucket, key: o.key)
        }
        for (label, record, sizes, expected) in forgeries {
            let name = try plant(t, record, sizes: sizes)
            let pull = repro(["pull", genuine.key, "--json"], cwd: t.b, env: t.env)
            let j = parseJSON(pull.out)
            let reasons = (j["rejected"]?.arrayValue ?? []).compactMap { $0["reason"]?.stringValue }
            XCTAssertTrue(reasons.contains { $0.contains(expected) }, "\(label): \(pull.out) \(pull.err)")
            XCTAssertNotEqual(repro(["show", record.runId], cwd: t.b, env: t.env).code, 0, "\(label) was stored")
            try t.client.delete(bucket: t.bucket, key: "team/" + name)
        }
        // The genuine one is pulled and served; nothing was written outside the results folder.
        XCTAssertEqual(repro(["push", "sim.yaml", "--key", t.keys + "/alice"], cwd: t.a.path, env: t.env).code, 0)
        let hit = repro(["run", "sim.yaml", "--json"], cwd: t.b, env: envB(t))
        XCTAssertEqual(parseJSON(hit.out)["cache"], "hit", hit.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: (t.b as NSString).deletingLastPathComponent + "/pwned.txt"))
        XCTAssertEqual(sh(["git", "config", "--get", "core.fsmonitor"], cwd: t.b).out, "")
        XCTAssertEqual(repro(["fsck"], cwd: t.b, env: t.env).code, 0)

        // A stored record with a climbing name (from before this check) is refused when served.
        let store = try Store(root: t.b + "/.repro")
        let results = t.b + "/results/x"
        XCTAssertThrowsError(try store.materializeBlob(result.sha256, into: results, name: "../../pwned.txt"))
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        symlink(t.b + "/.git", results + "/traj")
        XCTAssertThrowsError(try store.materializeBlob(result.sha256, into: results, name: "traj/config")) { e in
            XCTAssertTrue("\(e)".contains("is a link or a file"), "\(e)")
        }
        XCTAssertEqual(sh(["git", "config", "--get", "core.fsmonitor"], cwd: t.b).out, "")
    }

    /// `remote gc` with a manifest whose run id is a path: nothing outside the prefix goes.
    func testRemoteGCTouchesNothingOutsideItsPrefix() throws {
        let t = try makeTeam()
        var forged = try pushed(t)
        forged.runId = "../../other-team/important"
        try plant(t, forged)
        _ = try t.client.put(Array("theirs".utf8), bucket: t.bucket, key: "other-team/important.json")
        let gc = repro(["remote", "gc", "--keep-days", "0"], cwd: t.a.path, env: t.env)
        XCTAssertEqual(gc.code, 0, gc.err)
        XCTAssertEqual(try t.client.get(bucket: t.bucket, key: "other-team/important.json"), Array("theirs".utf8))
    }

    /// The same run signed again with a rotated key, and a manifest copied to a second name:
    /// one run is kept, the pull and the run succeed.
    func testDuplicateRunIdsInAPullKeepOne() throws {
        let t = try makeTeam()
        let genuine = try pushed(t)
        try plant(t, genuine, signer: "bob")
        let copy = try plant(t, genuine, signer: "alice")
        let copied = (copy as NSString).deletingLastPathComponent + "/copy-" + (copy as NSString).lastPathComponent.split(separator: "-").last.map(String.init)!
        _ = try t.client.put(try t.client.get(bucket: t.bucket, key: "team/" + copy), bucket: t.bucket, key: "team/" + copied)
        let run = repro(["run", "sim.yaml", "--json"], cwd: t.b, env: envB(t))
        XCTAssertEqual(run.code, 0, run.err)
        XCTAssertEqual(parseJSON(run.out)["cache"], "hit", run.err)
        XCTAssertEqual(lineCount(t.counterB), 0)
        XCTAssertEqual(repro(["pull", genuine.key], cwd: t.b, env: t.env).code, 0)
    }

    /// A key removed from trusted_keys: what it signed is no longer served; put back, it is.
    func testRevokedSignerIsNotServed() throws {
        let t = try makeTeam()
        _ = try pushed(t)
        XCTAssertEqual(parseJSON(repro(["run", "sim.yaml", "--json"], cwd: t.b, env: envB(t)).out)["cache"], "hit")
        let settings = try String(contentsOfFile: t.b + "/.repro.yaml", encoding: .utf8)
        try settings.replacingOccurrences(of: "[keys/alice.pub, keys/bob.pub]", with: "[keys/bob.pub]")
            .write(toFile: t.b + "/.repro.yaml", atomically: true, encoding: .utf8)
        let revoked = repro(["run", "sim.yaml", "--json"], cwd: t.b, env: envB(t).merging(["REPRO_NO_REMOTE": "1"]) { $1 })
        XCTAssertEqual(revoked.code, 0, revoked.err)
        XCTAssertEqual(parseJSON(revoked.out)["cache"], "miss", "a revoked signer's result was served")
        XCTAssertEqual(lineCount(t.counterB), 1)
        let pulled = try Store(root: t.b + "/.repro").recentRuns(limit: 10).filter { $0.origin != nil }
        XCTAssertEqual(pulled.count, 1)
        XCTAssertTrue(pulled.first?.invalidatedReason?.contains("no longer trusted") == true, "\(String(describing: pulled.first?.invalidatedReason))")
        // Trusted again: served again (the computed run is newer, so ask for the pulled one).
        try settings.write(toFile: t.b + "/.repro.yaml", atomically: true, encoding: .utf8)
        XCTAssertEqual(repro(["run", "sim.yaml", "--json"], cwd: t.b, env: envB(t)).code, 0)
        XCTAssertNil(try Store(root: t.b + "/.repro").run(id: pulled.first?.runId ?? "")?.invalidatedReason)
    }
}

/// Object storage that answers badly on purpose: bodies larger than promised, listings that
/// never end.
final class HostileServerTests: XCTestCase {
    func testOversizedObjectsAndEndlessListingsAreRefused() throws {
        let server = try ContractServer(script: "hostile_s3.py", arguments: [], whatIsMissing: "python3")
        let s3 = try S3Client(
            settings: AWSSettings(environment: CloudTestEnv.creds), endpoint: "http://127.0.0.1:\(server.port)",
            retry: RetryPolicy(attempts: 1))
        // A listing that hands back the same token: an error, not a hang with growing memory.
        XCTAssertThrowsError(try s3.list(bucket: "b", prefix: "manifests/")) { e in
            XCTAssertTrue("\(e)".contains("continuation token it had already given"), "\(e)")
        }
        // The same on Blob storage: one paging loop serves both stores.
        let blob = try AzureBlobClient(
            account: "acct", endpoint: "http://127.0.0.1:\(server.port)/acct",
            environment: ["AZURE_STORAGE_KEY": Data("k".utf8).base64EncodedString()], retry: RetryPolicy(attempts: 1))
        XCTAssertThrowsError(try blob.list(bucket: "c", prefix: "manifests/")) { e in
            XCTAssertTrue("\(e)".contains("listing az://c/manifests/ came back to a continuation token it had already given"), "\(e)")
        }
        // An 8-byte blob that is 64 MiB: stopped at 8 bytes, in memory and on disk.
        let sha = String(repeating: "a", count: 64)
        let dir = NSTemporaryDirectory() + "dl-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { FileIO.removeTree(dir) }
        for size in [Int64(8), 9 << 20] {
            XCTAssertThrowsError(try TeamCache.download(sha, expectedSize: size, s3: s3, loc: S3Location(bucket: "b", prefix: "t"), tmpDir: dir)) { e in
                XCTAssertEqual((e as? RemoteError)?.kind, .integrity, "\(e)")
            }
        }
        XCTAssertEqual(FileIO.directoryNames(dir), [], "the partial download was left behind")
        // A manifest (4 MiB at most).
        XCTAssertThrowsError(try s3.getIfPresent(bucket: "b", key: "manifests/aa/x.json", maxBytes: CacheManifest.maxBytes))
        // Anything held in memory: 256 MiB at most, whatever the caller asked.
        var req = HTTPRequest(method: "GET", url: "http://127.0.0.1:\(server.port)/b/k")
        req.maxBytes = 1 << 20
        XCTAssertThrowsError(try HTTPClient().perform(req)) { e in XCTAssertTrue("\(e)".contains("more than the 1048576 bytes"), "\(e)") }
    }
}

/// The report of runs whose ids, params, names, inputs, commit messages and outputs carry
/// markup: all of it shows as text in Chromium, and no script but the page's own runs.
final class HostileReportTests: XCTestCase {
    func testHostileValuesStayTextInChromium() throws {
        let chromium = try requireChromium()
        let repo = try TempRepo()
        let payload = "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
        repo.write("sim.sh", "#!/bin/sh\nprintf '{\"v\": %s, \"note\": \"%s\"}' \"$1\" '</script><script>x()</script>' > \"$REPRO_OUTDIR/result.json\"\necho '<img src=x onerror=alert(2)>' >&2\n", executable: true)
        repo.write("data/<img src=x onerror=alert(1)>.csv", "a,b\n<img src=x onerror=alert(3)>,2\n")
        repo.write(
            "sim.yaml",
            """
            name: hostile
            command: [./sim.sh, "{params.n}"]
            code: [sim.sh]
            inputs: ["data/<img src=x onerror=alert(1)>.csv"]
            params: {n: 1, label: '\(payload.replacingOccurrences(of: "'", with: "''"))'}
            report: {y: ["result.json:$.v"]}

            """)
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [1, 2, 3]}\n")
        repo.commitAll("<script>document.body.setAttribute('data-pwned','1')</script> commit")
        let sweep = repro(["sweep", "sweep.yaml"], cwd: repo.path)
        XCTAssertEqual(sweep.code, 0, sweep.err)
        // A record from before pulls were checked, with a run id that is markup.
        let store = try Store(root: repo.path + "/.repro")
        var forged = try XCTUnwrap(try store.recentRuns(limit: 1).first)
        forged.runId = "x\"><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
        try store.importRuns(
            [(forged, PullOrigin(remote: "origin", url: "", manifest: "", signer: nil, trustedAs: "test", pushedAt: "", pulledAt: ""))], blobs: [])
        let file = repo.path + "/report.html"
        let made = repro(["report", "sim.yaml", "--out", file], cwd: repo.path)
        XCTAssertEqual(made.code, 0, made.err)
        let html = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertEqual(html.components(separatedBy: "<script").count - 1, 1, "one script: the page's own")
        XCTAssertFalse(html.contains("<img"), "markup from the store reached the page")
        XCTAssertTrue(html.contains("Content-Security-Policy"))
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
        let dom = sh(["timeout", "90", chromium] + flags + ["--dump-dom", "file://" + file], cwd: repo.path)
        XCTAssertEqual(dom.code, 0, dom.err.suffix(2000).description)
        XCTAssertTrue(dom.out.contains("data-report-ready=\"1\""), "the page's own script must still run under its CSP")
        XCTAssertFalse(dom.out.contains("data-pwned=\"1\""), "a value from the store ran as script")
        XCTAssertFalse(dom.out.contains("<img"), "a value from the store became an element")
        XCTAssertTrue(dom.out.contains("&lt;img src=x onerror="), "the values are shown as text")
        let violations = dom.err.split(separator: "\n").filter { $0.contains("Content Security Policy") }
        XCTAssertEqual(violations, [], "the page's own script or style was refused by its CSP")
    }
}

/// A disk that fills up during a run, and a store on a disk with no room at all.
final class FullDiskTests: XCTestCase {
    func testAFullDiskLosesNothingAndGcAndFsckStillWork() throws {
        let mnt = NSTemporaryDirectory() + "full-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        guard sh(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], cwd: "/").code == 0 else {
            throw missingTestEnvironment("cannot mount a 4 MB tmpfs (needs root): the full-disk test needs a small file system")
        }
        defer {
            sh(["umount", "-l", mnt], cwd: "/")
            rmdir(mnt)
        }
        let repo = mnt + "/repo"
        mkdir(repo, 0o755)
        for args in [["init", "-q", "-b", "main"], ["config", "user.email", "t@example.org"], ["config", "user.name", "T"]] {
            XCTAssertEqual(sh(["git"] + args, cwd: repo).code, 0)
        }
        FileManager.default.createFile(
            atPath: repo + "/sim.sh", contents: Data("#!/bin/sh\nhead -c ${1}000000 /dev/urandom > \"$REPRO_OUTDIR/big.bin\"\necho ok > \"$REPRO_OUTDIR/r.txt\"\n".utf8))
        chmod(repo + "/sim.sh", 0o755)
        FileManager.default.createFile(atPath: repo + "/sim.yaml", contents: Data("name: big\ncommand: [./sim.sh, \"{params.mb}\"]\ncode: [sim.sh]\nparams: {mb: 1}\n".utf8))
        XCTAssertEqual(sh(["git", "add", "-A"], cwd: repo).code, 0)
        XCTAssertEqual(sh(["git", "commit", "-qm", "x"], cwd: repo).code, 0)
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo).code, 0)
        // 5 MB on a 4 MB disk: recording fails; the partial output leaves the slot, the run is
        // failed (not left running), and the message says what to free.
        let full = repro(["run", "sim.yaml", "--set", "params.mb=5"], cwd: repo)
        XCTAssertEqual(full.code, 4, full.err)
        XCTAssertTrue(full.err.contains("is full") && full.err.contains("repro cache gc"), full.err)
        XCTAssertEqual(DiskSpace.size(repo + "/.repro/tmp/run-slot-1/out") < 64 << 10, true, "the partial output stayed in the slot")
        let store = try Store(root: repo + "/.repro")
        XCTAssertEqual(try store.runs(inStatus: .running).count, 0)
        XCTAssertEqual(try store.recentRuns(limit: 5).filter { $0.status == .failed }.count, 1)
        // A killed sweep's folder (with a link out), then the disk filled to the last byte.
        let outside = mnt + "/keep"
        mkdir(outside, 0o755)
        FileManager.default.createFile(atPath: outside + "/k.txt", contents: Data("keep\n".utf8))
        let dead = repo + "/.repro/tmp/sweep-999999-slot1"
        try FileManager.default.createDirectory(atPath: dead + "/out", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dead + "/out/part.bin", contents: Data(count: 300_000))
        symlink(outside, dead + "/out/inputs")
        sh(["dd", "if=/dev/zero", "of=" + mnt + "/filler", "bs=64k"], cwd: "/")
        XCTAssertLessThan(DiskSpace.free(mnt) ?? 0, 64 << 10)
        let gc = repro(["cache", "gc"], cwd: repo)
        XCTAssertEqual(gc.code, 0, gc.err)
        XCTAssertTrue(gc.out.contains("task folder(s) left by killed runs") && !gc.out.contains(" 0 B freed"), gc.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead))
        XCTAssertEqual(try String(contentsOfFile: outside + "/k.txt", encoding: .utf8), "keep\n")
        let fsck = repro(["fsck"], cwd: repo)
        XCTAssertEqual(fsck.code, 0, fsck.out + fsck.err)
        // The first run is still served.
        unlink(mnt + "/filler")
        XCTAssertTrue(repro(["run", "sim.yaml"], cwd: repo).out.contains("cache hit"))
    }
}

/// A cloned repository's committed .repro.yaml does not decide where the user's secrets go.
final class ClonedConfigTests: XCTestCase {
    func testCommittedSettingsThatSendSecretsWaitForTheUser() throws {
        let log = NSTemporaryDirectory() + "capture-" + UUID().uuidString.prefix(8) + ".jsonl"
        defer { unlink(log) }
        let server = try ContractServer(script: "capture_http.py", arguments: ["--log", log], whatIsMissing: "python3")
        let repo = try TempRepo.seeded()
        let secretFile = repo.path + "-secret"
        try "one-line-secret\n".write(toFile: secretFile, atomically: true, encoding: .utf8)
        defer { unlink(secretFile) }
        repo.write(".repro.yaml", """
            backends:
              grab:
                type: slurm-rest
                url: http://admin:hunter2@127.0.0.1:\(server.port)
                user: me
                token_env: GITHUB_TOKEN
                staging: s3://bucket/x
                endpoint: http://127.0.0.1:\(server.port)
              file:
                type: slurm-rest
                url: http://127.0.0.1:\(server.port)/f
                user: me
                token_file: \(secretFile)
                staging: s3://bucket/y
                endpoint: http://127.0.0.1:\(server.port)
            cache:
              signing_key: keys/ci
              remote: {write: true}

            """)
        repo.commitAll("a colleague's settings", acceptSettings: false)
        let env = ["GITHUB_TOKEN": "ghp_topsecret", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"]
        // A local run is not disturbed; the backends are refused, saying why and what to do.
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path, env: env).code, 0)
        let backends = repro(["backends"], cwd: repo.path, env: env)
        XCTAssertTrue(backends.out.contains("repro config trust") || backends.err.contains("repro config trust"), backends.out + backends.err)
        let viaBackend = repro(["run", "sim.yaml", "--backend", "grab", "--no-cache"], cwd: repo.path, env: env)
        XCTAssertEqual(viaBackend.code, 2, viaBackend.err)
        XCTAssertTrue(viaBackend.err.contains("repro config trust") && viaBackend.err.contains("token_env"), viaBackend.err)
        let seen = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertFalse(seen.contains("topsecret") || seen.contains("one-line-secret"), "a secret reached the committed host: \(seen)")
        XCTAssertEqual(seen, "", "nothing may be sent to a host the user has not accepted")
        // No password from a URL in anything printed.
        XCTAssertFalse((backends.out + backends.err + viaBackend.err).contains("hunter2"))
        // Accepted: now the user's word (and a changed value needs accepting again).
        let dry = repro(["config", "trust", "--dry-run"], cwd: repo.path, env: env)
        XCTAssertTrue(dry.out.contains("backends.grab.token_env: GITHUB_TOKEN") && dry.out.contains("cache.remote.write"), dry.out)
        XCTAssertFalse(dry.out.contains("hunter2"), dry.out)
        XCTAssertEqual(repro(["config", "trust"], cwd: repo.path, env: env).code, 0)
        _ = repro(["backends"], cwd: repo.path, env: env)
        XCTAssertTrue(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ghp_topsecret"), "accepted settings are used")
        repo.write(".repro.yaml", (repo.read(".repro.yaml") ?? "").replacingOccurrences(of: "GITHUB_TOKEN", with: "OTHER_TOKEN"))
        repo.commitAll("changed", acceptSettings: false)
        let again = repro(["run", "sim.yaml", "--backend", "grab", "--no-cache"], cwd: repo.path, env: env)
        XCTAssertEqual(again.code, 2, again.err)
        // An uncommitted .repro.yaml is the user's own.
        let own = try TempRepo.seeded()
        own.write(".repro.yaml", "backends:\n  mine: {type: slurm-rest, url: \"http://127.0.0.1:\(server.port)/mine\", user: me, token_env: GITHUB_TOKEN, staging: \"s3://bkt/x\", endpoint: \"http://127.0.0.1:\(server.port)\"}\n")
        let ownBackends = repro(["backends"], cwd: own.path, env: env)
        XCTAssertFalse(ownBackends.out.contains("repro config trust"), ownBackends.out)
        // A token never goes in the clear to another machine.
        let far = try TempRepo.seeded()
        far.write(".repro.yaml", "backends:\n  far: {type: slurm-rest, url: \"http://10.255.255.1:6820\", user: me, token_env: GITHUB_TOKEN, staging: \"s3://bkt/x\"}\n")
        let refused = repro(["run", "sim.yaml", "--backend", "far", "--no-cache"], cwd: far.path, env: env)
        XCTAssertEqual(refused.code, 2, refused.err)
        XCTAssertTrue(refused.err.contains("plain http") && refused.err.contains("https://"), refused.err)
    }

    func testControlCharactersFromOutsideAreNotPrinted() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\nprintf 'bad \\033]0;owned\\007 \\033[2J end\\n' >&2\nexit 3\n", executable: true)
        repo.write("sim.yaml", "name: esc\ncommand: [./sim.sh]\ncode: [sim.sh]\n")
        repo.commitAll("title \u{1B}]0;pwned\u{07} and \u{1B}[31mred")
        let r = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertEqual(r.code, 1)
        XCTAssertFalse(r.out.contains("\u{1B}") || r.err.contains("\u{1B}") || r.err.contains("\u{07}"), r.out + r.err)
        XCTAssertTrue(r.err.contains("end"), r.err)
        let log = repro(["log"], cwd: repo.path)
        XCTAssertFalse(log.out.contains("\u{1B}"), log.out)
        // Into a pipe, `repro logs` gives the bytes as written.
        XCTAssertTrue(repro(["logs", "--stderr"], cwd: repo.path).out.contains("\u{1B}]0;owned"))
    }
}

/// A child's umask is the child's: repro's own files, made on other threads meanwhile, keep
/// theirs (the process-wide umask used to be switched around each spawn).
final class ChildUmaskTests: XCTestCase {
    func testAChildsUmaskNeverReachesOtherThreads() throws {
        let dir = NSTemporaryDirectory() + "umask-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { FileIO.removeTree(dir) }
        let before = umask(0o022)
        defer { umask(before) }
        // The child sees its umask.
        var probe = ChildProcess(
            executable: "/bin/sh", arguments: ["-c", "umask > \"$1\"", "sh", dir + "/seen"], environment: ["PATH": "/usr/bin:/bin"],
            workingDirectory: dir, stdoutPath: dir + "/o", stderrPath: dir + "/e", timeout: 10)
        probe.umask = 0o077
        XCTAssertEqual(try probe.run().end.exitCode, 0)
        XCTAssertEqual(try String(contentsOfFile: dir + "/seen", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), "0077")
        // Files made while children with umask 077 start are still 0644.
        let done = Atomic(false)
        let tight = Atomic(0)
        let t = Thread {
            var i = 0
            while !done.load(ordering: .relaxed) {
                let path = dir + "/f\(i % 64)"
                unlink(path)
                let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o666)
                var st = stat()
                if fd >= 0, fstat(fd, &st) == 0, st.st_mode & 0o777 != 0o644 { tight.add(1, ordering: .relaxed) }
                if fd >= 0 { close(fd) }
                i += 1
            }
        }
        t.start()
        for _ in 0..<300 {
            var c = ChildProcess(
                executable: "/bin/true", arguments: [], environment: [:], workingDirectory: dir, stdoutPath: dir + "/o", stderrPath: dir + "/e",
                timeout: 10)
            c.umask = 0o077
            XCTAssertEqual(try c.run().end.exitCode, 0)
        }
        done.store(true, ordering: .relaxed)
        while !t.isFinished { usleep(1000) }
        XCTAssertEqual(tight.load(ordering: .relaxed), 0, "files made on another thread took a child's umask")
    }
}

/// The record fuzzing corpus (scripts/fuzz.sh record adds to it): genuine records pass their
/// self-check, and nothing that passes names an output outside its folder.
final class RecordCorpusTests: XCTestCase {
    func testRecordFuzzCorpusReplays() throws {
        let dir = TestPaths.root + "/Tests/ReproKitTests/Corpus/record"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 3, "the corpus is missing")
        var genuine = 0
        for name in names {
            guard let json = try? JSONParser.parse(try FileIO.readAll(dir + "/" + name)), let r = try? RunRecord(json: json, source: name) else {
                continue
            }
            let problems = RecordIntegrity.problems(r)
            if name.hasPrefix("seed-") {
                XCTAssertEqual(problems, [], "a record repro wrote fails its own check: \(name)")
                genuine += 1
            }
            guard problems.isEmpty else { continue }
            for o in r.outputs { XCTAssertNil(SafePath.problem(in: o.name), "\(name): \(o.name)") }
        }
        XCTAssertGreaterThanOrEqual(genuine, 3)
    }
}

/// Bytes staged through object storage cost the same on every backend that shares no disk:
/// AWS and Azure budgets used to leave `per_gb_staged` out.
final class StagedCostTests: XCTestCase {
    func testStagedBytesArePricedOnEveryBackendThatSharesNoDisk() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\necho 1 > \"$REPRO_OUTDIR/r.txt\"\n", executable: true)
        repo.write("data/big.bin", String(repeating: "x", count: 2_000_000))
        repo.write("sim.yaml", "name: staged\ncommand: [./sim.sh]\ncode: [sim.sh]\ninputs: [data/big.bin]\nestimate: {seconds: \"100\"}\n")
        repo.write(".repro.yaml", """
            backends:
              aws: {type: aws-batch, job_queue: q, job_definition: "d:1", staging: "s3://bkt-staged/x"}
              az: {type: azure-batch, account_url: "https://a.westeurope.batch.azure.com", pool_id: p, storage_account: sa, container: c}
              rest: {type: slurm-rest, url: "https://cluster.example.org", user: me, token_env: T, staging: "s3://bkt-staged/y"}
              shared: {type: slurm, workdir: /tmp}
            prices:
              aws: {per_core_hour: 0, per_gb_staged: 1000}
              az: {per_core_hour: 0, per_gb_staged: 1000}
              rest: {per_core_hour: 0, per_gb_staged: 1000}
              shared: {per_core_hour: 0, per_gb_staged: 1000}

            """)
        repo.commitAll()
        func cost(_ backend: String) -> Double? {
            let r = repro(["plan", "sim.yaml", "--backend", backend, "--json"], cwd: repo.path)
            XCTAssertEqual(r.code, 0, r.err)
            return parseJSON(r.out)["cost_estimate"]?.numberValue
        }
        // 2 MB at 1000 per GB: 2.0 on each backend that stages, nothing on the shared folder.
        for b in ["aws", "az", "rest"] { XCTAssertEqual(cost(b) ?? 0, 2.0, accuracy: 0.01, b) }
        XCTAssertEqual(cost("shared") ?? -1, 0, accuracy: 0.0001)
    }
}
