import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote
@testable import ReproStore

/// The slurm-rest backend for real: slurmrestd with JWT on the test cluster, tasks staged in an
/// S3-compatible server (moto), jobs running as `reprotest`, who cannot read the submitting
/// repository (mode 0700) or its store. A test passes only if everything travels through
/// object storage. Started by scripts/slurm-test-cluster.sh (scripts/test.sh runs it).
final class RemoteTests: XCTestCase {
    let creds = CloudTestEnv.creds
    func token(lifespan: Int = 3600) -> String { CloudTestEnv.token(lifespan: lifespan) }

    /// A repository only its owner can read, with the example simulation and a `cloud` backend
    /// staging into a bucket of its own.
    func cloudRepo(population: Int = 60, extraConfig: String = "", reproPath: String = TestPaths.repro) throws -> (TempRepo, String, [String: String]) {
        try CloudTestEnv.require()
        let repo = try TempRepo()
        chmod(repo.path, 0o700)
        try repo.writeDNARepair(population: population)
        let (bucket, env) = try CloudTestEnv.addCloudBackend(to: repo, extraConfig: extraConfig, reproPath: reproPath)
        repo.commitAll("cloud setup")
        return (repo, bucket, env)
    }

    func testExampleSimulationRunsOnACloudClusterThatCannotReadTheRepository() throws {
        let (repo, bucket, env) = try cloudRepo()
        // The job's user really cannot read the repository.
        XCTAssertNotEqual(sh(["runuser", "-u", "reprotest", "--", "cat", repo.path + "/sim.py"], cwd: "/").code, 0)

        let cloud = repro(["run", "sim.yaml", "--backend", "cloud", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(cloud.code, 0, cloud.out + cloud.err)
        let run = parseJSON(cloud.out)
        XCTAssertEqual(run["backend"]?.stringValue, "cloud")
        XCTAssertEqual(run["backend_type"]?.stringValue, "slurm-rest")
        XCTAssertNotNil(run["job_id"]?.stringValue)
        XCTAssertEqual(run["status"]?.stringValue, "succeeded")
        XCTAssertEqual(run["host"]?.stringValue, HostInfo.hostname)
        let local = repro(["run", "sim.yaml", "--backend", "local", "--no-cache", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(local.code, 0, local.err)
        func hashes(_ r: JSONValue?) -> [String: String] {
            Dictionary(uniqueKeysWithValues: (r?["outputs"]?.arrayValue ?? []).compactMap { o in
                o["name"]?.stringValue.flatMap { n in o["sha256"]?.stringValue.map { (n, $0) } }
            })
        }
        XCTAssertEqual(hashes(run).count, 2)
        XCTAssertEqual(hashes(run), hashes(parseJSON(local.out)))

        // verify local against cloud: IDENTICAL.
        let v = repro(["verify", "sim.yaml", "--backends", "local,cloud"], cwd: repo.path, env: env)
        XCTAssertEqual(v.code, 0, v.out + v.err)
        XCTAssertTrue(v.out.contains("IDENTICAL"), v.out)
        XCTAssertTrue(v.out.contains("cloud job"), v.out)

        // Ingested runs leave only shared content in the bucket (code, inputs), no task objects.
        let s3 = try S3Client(settings: AWSSettings(environment: creds), endpoint: CloudTestEnv.s3)
        let left = try s3.list(bucket: bucket, prefix: "staging/tasks/")
        XCTAssertEqual(left.map(\.key), [])
        XCTAssertEqual(try s3.list(bucket: bucket, prefix: "staging/code/").count, 1, "the code archive is uploaded once per commit")

        // No credential anywhere in the store.
        let dump = sh(["sqlite3", repo.path + "/.repro/store.sqlite", ".dump"], cwd: "/").out
        XCTAssertFalse(dump.isEmpty)
        for secret in [env[CloudTestEnv.tokenVariable] ?? "?", "reprotestsecret", "X-Amz-Signature", "X-Amz-Credential"] {
            XCTAssertFalse(dump.contains(secret), "\(secret.prefix(12))… is in the store")
        }
        let blobs = sh(["grep", "-rl", "reprotestsecret", repo.path + "/.repro"], cwd: "/")
        XCTAssertEqual(blobs.out, "", "a credential reached \(blobs.out)")
    }

    func testDirtyCodeAndInputsTravelByContent() throws {
        let (repo, _, env) = try cloudRepo()
        repo.write("data/rates.txt", "0.5\n")
        repo.write("sim2.yaml", """
            name: reads-input
            command: [sh, -c, "cat data/rates.txt sim.sh > $REPRO_OUTDIR/seen.txt; sh sim.sh"]
            code: [sim.sh]
            inputs: [data/rates.txt]
            outputs: [seen.txt]
            """)
        repo.write("sim.sh", "echo committed\n")
        repo.commitAll("input spec")
        repo.write("data/rates.txt", "0.75 (not committed)\n")
        repo.write("sim.sh", "echo edited, not committed\n")
        let r = repro(["run", "sim2.yaml", "--backend", "cloud", "--allow-dirty", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err)
        let out = repo.read("results/reads-input/" + String(parseJSON(r.out)["key"]?.stringValue?.prefix(12) ?? "") + "/seen.txt")
        XCTAssertEqual(out, "0.75 (not committed)\necho edited, not committed\n")
    }

    /// Waiting is not failing: with the node drained, slurmrestd queues the array with error
    /// 2068 ("Required node not available") beside its job id, and reports the waiting tasks as
    /// one record. The sweep waits well past manifest_grace, then every point succeeds once the
    /// node is back.
    func testASweepWaitingForNodesPastTheGraceSucceedsWhenTheyCome() throws {
        let (repo, _, env) = try cloudRepo(population: 20, extraConfig: "    manifest_grace: 2s")
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  params.dose_gy: [0.5, 1.0, 1.5]\nbackend: cloud\n")
        repo.commitAll("sweep")
        let node = HostInfo.hostname.split(separator: ".").first.map(String.init) ?? HostInfo.hostname
        XCTAssertEqual(sh(["scontrol", "update", "NodeName=\(node)", "State=DRAIN", "Reason=repro-test-waiting"], cwd: "/").code, 0)
        var resumed = false
        func resume() {
            if !resumed { _ = sh(["scontrol", "update", "NodeName=\(node)", "State=RESUME"], cwd: "/") }
            resumed = true
        }
        defer { resume() }
        let log = NSTemporaryDirectory() + "waiting-" + UUID().uuidString + ".err"
        defer { unlink(log) }
        let p = try launchRepro(["sweep", "sweep.yaml", "--json"], cwd: repo.path, env: env, stderrFile: log)
        // Submitted, then waiting for 4x the grace.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, p.isRunning, !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("submitted") { usleep(100_000) }
        usleep(8_000_000)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(p.isRunning, "the sweep gave up while its tasks waited: \(text)")
        XCTAssertTrue(text.contains("submitted 3 run(s)"), "queued with error 2068 beside a job id is submitted: \(text)")
        let running = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM runs WHERE status = 'running'"], cwd: "/")
        XCTAssertEqual(running.out.trimmingCharacters(in: .whitespacesAndNewlines), "3", text)
        // A single run waiting says why, as the scheduler words it.
        let runLog = NSTemporaryDirectory() + "waiting-run-" + UUID().uuidString + ".err"
        defer { unlink(runLog) }
        let single = try launchRepro(["run", "sim.yaml", "--backend", "cloud", "--no-cache"], cwd: repo.path, env: env, stderrFile: runLog)
        let until = Date().addingTimeInterval(30)
        while Date() < until, single.isRunning, !((try? String(contentsOfFile: runLog, encoding: .utf8)) ?? "").contains("PENDING (") { usleep(100_000) }
        XCTAssertTrue(((try? String(contentsOfFile: runLog, encoding: .utf8)) ?? "").contains("PENDING ("), (try? String(contentsOfFile: runLog, encoding: .utf8)) ?? "")
        resume()
        single.waitUntilExit()
        XCTAssertEqual(single.terminationStatus, 0, (try? String(contentsOfFile: runLog, encoding: .utf8)) ?? "")
        p.waitUntilExit()
        let all = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationStatus, 0, all)
        XCTAssertFalse(all.contains("no longer knows"), all)
        let done = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT status, count(*) FROM runs GROUP BY status"], cwd: "/")
        XCTAssertEqual(done.out.trimmingCharacters(in: .whitespacesAndNewlines), "succeeded|4", all)
    }

    /// Tokens the backend makes itself, accepted by the real slurmrestd: minted from the
    /// cluster's JWT key (as AWS PCS and CycleCloud users do), or from a command run once for a
    /// whole sweep (not once per request).
    func testTokensMintedFromTheKeyOrMadeByACommandAreAccepted() throws {
        let key = "/var/lib/slurm/slurmctld/jwt_hs256.key"
        var (repo, _, env) = try cloudRepo(population: 20, extraConfig: "    token_key_file: \(key)\n    token_lifespan: 10m")
        env[CloudTestEnv.tokenVariable] = ""
        let minted = repro(["run", "sim.yaml", "--backend", "cloud", "--no-fallback", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(minted.code, 0, minted.err)
        XCTAssertEqual(parseJSON(minted.out)["status"]?.stringValue, "succeeded")
        // A key that is not the cluster's: refused by the server, as an authentication error.
        let wrong = NSTemporaryDirectory() + "wrong-" + UUID().uuidString + ".key"
        defer { unlink(wrong) }
        FileManager.default.createFile(atPath: wrong, contents: Data(repeating: 7, count: 32))
        let config = try String(contentsOfFile: repo.path + "/.repro.yaml", encoding: .utf8)
        repo.write(".repro.yaml", config.replacingOccurrences(of: key, with: wrong))
        // A changed token_key_file in the committed file waits for the user's word again.
        XCTAssertEqual(repro(["run", "sim.yaml", "--backend", "cloud", "--no-fallback", "--no-cache"], cwd: repo.path, env: env).code, 2)
        XCTAssertEqual(repro(["config", "trust"], cwd: repo.path, env: env).code, 0)
        let refused = repro(["run", "sim.yaml", "--backend", "cloud", "--no-fallback", "--no-cache"], cwd: repo.path, env: env)
        XCTAssertEqual(refused.code, 6, refused.err)
        XCTAssertTrue(refused.err.contains("refused"), refused.err)
        // token_command: run once for a sweep of three points.
        let counter = NSTemporaryDirectory() + "token-calls-" + UUID().uuidString
        defer { unlink(counter) }
        let script = repo.path + "/../token-\(UUID().uuidString.prefix(8)).sh"
        FileManager.default.createFile(atPath: script, contents: Data("#!/bin/sh\necho x >> \(counter)\nexec scontrol token username=reprotest lifespan=600\n".utf8))
        chmod(script, 0o755)
        defer { unlink(script) }
        repo.write(".repro.yaml", config.replacingOccurrences(of: "    token_key_file: \(key)\n", with: "    token_command: \(script)\n"))
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  params.dose_gy: [0.5, 1.0, 1.5]\nbackend: cloud\n")
        repo.commitAll("sweep")
        let sweep = repro(["sweep", "sweep.yaml"], cwd: repo.path, env: env)
        XCTAssertEqual(sweep.code, 0, sweep.err)
        XCTAssertEqual(lineCount(counter), 1, "the command runs once per token lifetime, not per request")
    }

    /// Staging in Azure Blob Storage for a SLURM cluster (CycleCloud has no S3): the real
    /// cluster's job user fetches the task through SAS URLs from the Blob contract server (SAS
    /// checked with azure-storage-blob's own code) and the run matches a local one.
    func testSlurmRestStagesThroughAzureBlob() throws {
        let server = try AzureBatchContractTests.Server()
        let (repo, _, s3env) = try cloudRepo(population: 20)
        let container = "staging-" + UUID().uuidString.prefix(8).lowercased()
        try server.blob().createContainer(container)
        // Local settings (.repro/config.yaml): where tokens and results go is this machine's call.
        unlink(repo.path + "/.repro.yaml")
        repo.commitAll("no project settings")
        repo.write(".repro/config.yaml", """
            backends:
              cloud:
                type: slurm-rest
                url: \(CloudTestEnv.rest)
                user: reprotest
                token_env: \(CloudTestEnv.tokenVariable)
                staging: az://\(container)/staging
                storage_account: reprostore
                blob_endpoint: \(server.blobURL)
                repro_path: \(TestPaths.repro)
                poll_interval: 0.5s
            """)
        var env = AzureBatchContractTests.env
        env[CloudTestEnv.tokenVariable] = s3env[CloudTestEnv.tokenVariable]
        let r = repro(["run", "sim.yaml", "--backend", "cloud", "--no-fallback", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err)
        let run = parseJSON(r.out)
        XCTAssertEqual(run["status"]?.stringValue, "succeeded")
        XCTAssertEqual(run["backend_type"]?.stringValue, "slurm-rest")
        let local = parseJSON(repro(["run", "sim.yaml", "--backend", "local", "--no-cache", "--json"], cwd: repo.path, env: env).out)
        func hashes(_ j: JSONValue) -> [String] { (j["outputs"]?.arrayValue ?? []).compactMap { $0["sha256"]?.stringValue }.sorted() }
        XCTAssertEqual(hashes(run), hashes(local))
        XCTAssertFalse(hashes(run).isEmpty)
        // The task's objects went through the container (code and inputs stay for other runs).
        XCTAssertFalse(try server.blob().list(bucket: container, prefix: "staging/code/").isEmpty)
        // An az:// staging names its account.
        let missing = repo.path + "/.repro/config.yaml"
        try String(contentsOfFile: missing, encoding: .utf8).replacingOccurrences(of: "    storage_account: reprostore\n", with: "")
            .write(toFile: missing, atomically: true, encoding: .utf8)
        let refused = repro(["run", "sim.yaml", "--backend", "cloud", "--no-cache"], cwd: repo.path, env: env)
        XCTAssertEqual(refused.code, 2, refused.err)
        XCTAssertTrue(refused.err.contains("needs storage_account"), refused.err)
    }

    func testSweepOf50PointsRunsAsJobArraysAndResumesWithoutRunningAnythingTwice() throws {
        let (repo, _, env) = try cloudRepo(population: 20)
        repo.write("sweep.yaml", """
            base: sim.yaml
            grid:
              params.dose_gy: [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]
              params.t_end_h: [1, 2, 4, 8, 12]
            backend: cloud
            """)
        repo.commitAll("sweep")
        let log = NSTemporaryDirectory() + "sweep-" + UUID().uuidString + ".err"
        defer { unlink(log) }
        let p = try launchRepro(["sweep", "sweep.yaml"], cwd: repo.path, env: env, stderrFile: log)
        // Interrupt once some points have finished.
        let deadline = Date().addingTimeInterval(120)
        var submitted = false
        while Date() < deadline && p.isRunning {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if text.contains("submitted 50 run(s)") { submitted = true }
            let store = repo.path + "/.repro/store.sqlite"
            let done = Int(sh(["sqlite3", store, "SELECT count(*) FROM runs WHERE status = 'succeeded'"], cwd: "/").out
                .trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            if submitted && done >= 5 { break }
            usleep(100_000)
        }
        XCTAssertTrue(submitted, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let firstRun = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT key || ' ' || run_id FROM runs WHERE status = 'succeeded'"], cwd: "/")
            .out.split(separator: "\n").map(String.init)
        XCTAssertGreaterThanOrEqual(firstRun.count, 5)
        // The arrays: every run of the first sweep has an ARRAY_INDEX job id.
        let jobs = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT job_id FROM runs"], cwd: "/").out
        XCTAssertTrue(jobs.split(separator: "\n").allSatisfy { $0.contains("_") }, jobs)

        let again = repro(["sweep", "sweep.yaml", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(again.code, 0, again.err)
        let summary = parseJSON(again.out)
        XCTAssertEqual(summary["succeeded"]?.intValue.map { $0 + (summary["hits"]?.intValue ?? 0) }, 50)
        // What succeeded the first time was served, not run again: one succeeded run per key.
        let perKey = sh(
            ["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM runs WHERE status = 'succeeded' GROUP BY key HAVING count(*) > 1"],
            cwd: "/")
        XCTAssertEqual(perKey.out, "", "a key was computed twice")
        let total = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(DISTINCT key) FROM runs WHERE status = 'succeeded'"], cwd: "/")
        XCTAssertEqual(total.out.trimmingCharacters(in: .whitespacesAndNewlines), "50")
        for line in firstRun {
            let parts = line.split(separator: " ")
            let now = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT run_id FROM runs WHERE status = 'succeeded' AND key = '\(parts[0])'"], cwd: "/")
            XCTAssertEqual(now.out.trimmingCharacters(in: .whitespacesAndNewlines), String(parts[1]))
        }
    }

    func testOutputsAlteredInTheBucketAreNeverStored() throws {
        let (repo, bucket, env) = try cloudRepo()
        let submit = repro(["run", "sim.yaml", "--backend", "cloud", "--detach", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(submit.code, 0, submit.err)
        let runId = try XCTUnwrap(parseJSON(submit.out)["run_id"]?.stringValue)
        let s3 = try S3Client(settings: AWSSettings(environment: creds), endpoint: CloudTestEnv.s3)
        let prefix = "staging/tasks/\(runId)/0/"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, try s3.head(bucket: bucket, key: prefix + "manifest.json") == nil { usleep(200_000) }
        XCTAssertNotNil(try s3.head(bucket: bucket, key: prefix + "manifest.json"))
        // Someone with write access to the bucket swaps a byte of result.json.
        let dir = NSTemporaryDirectory() + "tamper-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir + "/x", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try s3.download(bucket: bucket, key: prefix + "outputs.tar", to: dir + "/outputs.tar")
        try Tar.extract(dir + "/outputs.tar", into: dir + "/x")
        var bytes = try FileIO.readAll(dir + "/x/result.json")
        bytes[bytes.count / 2] ^= 1
        let w = try Tar.Writer(path: dir + "/evil.tar")
        for f in OutputCollector.regularFiles(under: dir + "/x") {
            let b = f == "result.json" ? bytes : try FileIO.readAll(dir + "/x/" + f)
            try w.add(.file(path: f, executable: false, size: Int64(b.count), source: .bytes(b)))
        }
        try w.finish()
        try s3.upload(file: dir + "/evil.tar", bucket: bucket, key: prefix + "outputs.tar")

        let wait = repro(["wait", runId], cwd: repo.path, env: env)
        XCTAssertNotEqual(wait.code, 0)
        let show = parseJSON(repro(["show", runId, "--json"], cwd: repo.path, env: env).out)
        XCTAssertEqual(show["status"]?.stringValue, "failed")
        XCTAssertTrue(show["message"]?.stringValue?.contains("does not match the manifest") ?? false, show["message"]?.stringValue ?? "")
        XCTAssertEqual(show["outputs"]?.arrayValue?.count, 0, "nothing from the altered task is stored")
        // And a fresh run computes it properly.
        XCTAssertEqual(repro(["run", "sim.yaml", "--backend", "cloud"], cwd: repo.path, env: env).code, 0)
    }

    func testExpiredTokenIsAClearErrorAndNothingIsRecordedAsRunning() throws {
        var (repo, _, env) = try cloudRepo()
        env[CloudTestEnv.tokenVariable] = CloudTestEnv.expiredToken()
        XCTAssertLessThan(SlurmREST.tokenExpiry(env[CloudTestEnv.tokenVariable] ?? "") ?? .infinity, Clock.now(), "the token is expired")
        let r = repro(["run", "sim.yaml", "--backend", "cloud", "--no-fallback"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 6, r.err)
        XCTAssertTrue(r.err.contains("expired") && r.err.contains("scontrol token"), r.err)
        XCTAssertFalse(r.err.contains(env[CloudTestEnv.tokenVariable] ?? "?"), "the token is in the message")
        // Found before anything was recorded or uploaded.
        let recorded = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM runs"], cwd: "/")
        XCTAssertEqual(recorded.out.trimmingCharacters(in: .whitespacesAndNewlines), "0")
        // Expired credentials are the setup's fault, not an outage: with fallback on (the
        // default) the run still does not go to local; the error says what to do.
        let fb = repro(["run", "sim.yaml", "--backend", "cloud"], cwd: repo.path, env: env)
        XCTAssertEqual(fb.code, 6, fb.err)
        XCTAssertFalse(fb.err.contains("falling back"), fb.err)
        XCTAssertTrue(fb.err.contains("scontrol token") && fb.err.contains("--backend local"), fb.err)
        let after = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM runs WHERE status != 'failed'"], cwd: "/")
        XCTAssertEqual(after.out.trimmingCharacters(in: .whitespacesAndNewlines), "0", "nothing ran")
    }

    /// slurmrestd answers a token it cannot verify with HTTP 500 on every call (22.05: "slurmctld
    /// config is unable to load", or "Unable to find JobId"): an authentication error that says
    /// how to make a token, never a hiccup retried and then blamed on the cluster.
    func testAnInvalidTokenIsAnAuthenticationErrorNotAServerHiccup() throws {
        var (repo, _, env) = try cloudRepo()
        func b64(_ s: String) -> String {
            Data(s.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_")
        }
        let exp = Int(Date().timeIntervalSince1970) + 3600
        env[CloudTestEnv.tokenVariable] = b64("{\"alg\":\"HS256\",\"typ\":\"JWT\"}") + "." + b64("{\"exp\":\(exp),\"iat\":1,\"sun\":\"reprotest\"}") + ".Zm9yZ2Vk"
        let r = repro(["run", "sim.yaml", "--backend", "cloud", "--no-fallback"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 6, r.err)
        XCTAssertTrue(r.err.contains("refused") && r.err.contains("scontrol token username=reprotest"), r.err)
        XCTAssertFalse(r.err.contains("trying again"), "an authentication error is not retried: \(r.err)")
        // A token for another user is caught before anything is sent.
        env[CloudTestEnv.tokenVariable] = token(lifespan: 600).isEmpty ? "" : sh(["scontrol", "token", "username=root", "lifespan=600"], cwd: "/").out
            .trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "SLURM_JWT=", with: "")
        let other = repro(["run", "sim.yaml", "--backend", "cloud", "--no-fallback"], cwd: repo.path, env: env)
        XCTAssertEqual(other.code, 6, other.err)
        XCTAssertTrue(other.err.contains("is for user root"), other.err)
    }

    func testAJobWhoseManifestNeverAppearsFailsWithTheCause() throws {
        // The "repro" on the nodes does nothing: the job COMPLETES and no manifest ever comes.
        let (repo, _, env) = try cloudRepo(extraConfig: "    manifest_grace: 2s", reproPath: "/bin/true")
        let r = repro(["run", "sim.yaml", "--backend", "cloud", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 1, r.err)
        let run = parseJSON(r.out)
        XCTAssertEqual(run["status"]?.stringValue, "failed")
        let message = run["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("no manifest appeared") && message.contains("/bin/true"), message)
    }

    func testS3DownAtSubmissionIsRetriedThenNamedAndARerunResumes() throws {
        let moto = try MotoServer()
        let (repo, _, baseEnv) = try cloudRepo()
        // This repository stages through a private S3 server, stopped before the run.
        repo.write(".repro/config.yaml", """
            backends:
              cloud:
                type: slurm-rest
                staging: s3://repro-private/staging
                endpoint: \(moto.endpoint)
            orchestration: {retries: 1, retry_delay: 0.2s}
            """)
        var env = baseEnv
        env["AWS_ENDPOINT_URL_S3"] = moto.endpoint
        try moto.client().createBucket("repro-private")
        moto.stop()
        let r = repro(["run", "sim.yaml", "--backend", "cloud", "--no-fallback"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 6, r.err)
        XCTAssertTrue(r.err.contains(moto.endpoint.replacingOccurrences(of: "http://", with: "")) || r.err.contains("127.0.0.1"), r.err)
        XCTAssertTrue(r.err.contains("trying again in") && r.err.contains("(retry 1 of 1)"), r.err)
        let statuses = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT status FROM runs"], cwd: "/").out
        XCTAssertFalse(statuses.contains("running") || statuses.contains("succeeded"), statuses)
        // The shared server is back (the local override removed): the same command succeeds.
        unlink(repo.path + "/.repro/config.yaml")
        XCTAssertEqual(repro(["run", "sim.yaml", "--backend", "cloud"], cwd: repo.path, env: baseEnv).code, 0)
    }

    func testSlurmrestdStoppedDuringASweepTheSweepFinishesThroughTheManifests() throws {
        let (repo, _, env) = try cloudRepo(population: 20)
        repo.write("slow.py", "import time, runpy; time.sleep(3); runpy.run_path('sim.py', run_name='__main__')\n")
        repo.write("slow.yaml", """
            name: slow
            command: [python3, slow.py]
            code: [sim.py, slow.py]
            outputs: [result.json]
            params: {population_size: 20, dose_gy: 2.0, pathways: [NHEJ, HR], t_end_h: 24}
            seed: 42
            solver: {rtol: 1e-6, atol: 1e-9}
            """)
        repo.write("sweep.yaml", "base: slow.yaml\ngrid:\n  seed: [1, 2, 3, 4, 5, 6]\nbackend: cloud\n")
        repo.commitAll("slow sweep")
        let log = NSTemporaryDirectory() + "rest-" + UUID().uuidString + ".err"
        defer { unlink(log) }
        let p = try launchRepro(["sweep", "sweep.yaml"], cwd: repo.path, env: env, stderrFile: log)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("submitted") { usleep(100_000) }
        // slurmrestd goes away; the jobs go on on the cluster and their manifests land in the bucket.
        let restart = CloudTestEnv.stopSlurmrestd()
        defer { restart() }
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationStatus, 0, text)
        let ok = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM runs WHERE status = 'succeeded'"], cwd: "/")
        XCTAssertEqual(ok.out.trimmingCharacters(in: .whitespacesAndNewlines), "6", text)
    }

    func testBackendsCommandChecksEachConfiguredBackend() throws {
        let (repo, _, env) = try cloudRepo()
        let good = repro(["backends", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(good.code, 0, good.err)
        let list = parseJSON(good.out).arrayValue ?? []
        let cloud = list.first { $0["name"]?.stringValue == "cloud" }
        XCTAssertEqual(cloud?["type"]?.stringValue, "slurm-rest")
        XCTAssertEqual(cloud?["ok"], .bool(true), good.out)
        var bad = env
        bad[CloudTestEnv.tokenVariable] = "not-a-token"
        let r = repro(["backends"], cwd: repo.path, env: bad)
        XCTAssertEqual(r.code, 6, r.out + r.err)
        XCTAssertTrue((r.out + r.err).contains("cloud"), r.out + r.err)
    }

    /// The S3 server goes away while the task runs: the worker cannot upload, the submitter
    /// cannot read the bucket. Polling waits the outage out up to orchestration.outage_limit,
    /// then stops with a clear error naming the endpoint (exit 6); the run is left running
    /// (nothing half-ingested, nothing cancelled), and `repro wait` settles it once S3 is back.
    func testS3StoppedWhileTheTaskRunsIsNamedAndSettledLater() throws {
        let moto = try MotoServer()
        let (repo, _, baseEnv) = try cloudRepo(extraConfig: "    manifest_grace: 2s")
        repo.write("slow.yaml", """
            name: slow
            command: [sh, -c, "sleep 4; echo done > $REPRO_OUTDIR/out.txt"]
            code: [slow.yaml]
            """)
        repo.commitAll("slow")
        try FileManager.default.createDirectory(atPath: repo.path + "/.repro", withIntermediateDirectories: true)
        repo.write(".repro/config.yaml", """
            backends:
              cloud:
                staging: s3://repro-private/staging
                endpoint: \(moto.endpoint)
            orchestration: {outage_limit: 3s}
            """)
        try moto.client().createBucket("repro-private")
        let log = NSTemporaryDirectory() + "s3down-" + UUID().uuidString
        defer { unlink(log) }
        let p = try launchRepro(["run", "slow.yaml", "--backend", "cloud", "--no-fallback"], cwd: repo.path, env: baseEnv, stderrFile: log)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("RUNNING") { usleep(100_000) }
        moto.stop()
        p.waitUntilExit()
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(p.terminationStatus, 6, text)
        XCTAssertTrue(text.contains("127.0.0.1:\(moto.port)"), text)
        let state = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT run_id || '|' || status FROM runs"], cwd: "/").out
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(state.hasSuffix("|running"), "left for `repro wait`, not half-ingested: \(state)")
        // S3 is back (empty: the worker's uploads never arrived): the run fails with the cause.
        try moto.restart()
        try moto.client().createBucket("repro-private")
        let runId = String(state.split(separator: "|").first ?? "")
        let w = repro(["wait", runId], cwd: repo.path, env: baseEnv)
        XCTAssertNotEqual(w.code, 0, w.err)
        let show = parseJSON(repro(["show", runId, "--json"], cwd: repo.path, env: baseEnv).out)
        XCTAssertEqual(show["status"], "failed")
        XCTAssertTrue(show["message"]?.stringValue?.contains("no manifest appeared") ?? false, show["message"]?.stringValue ?? "")
        XCTAssertEqual(show["outputs"]?.arrayValue?.count, 0)
    }
}

/// Someone who can write to the staging prefix, or read a node's process list.
extension RemoteTests {
    func testABucketWriterCannotRunCommandsOrForgeResults() throws {
        let (repo, bucket, env) = try cloudRepo()
        let submit = repro(["run", "sim.yaml", "--backend", "cloud", "--detach", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(submit.code, 0, submit.err)
        let run = parseJSON(submit.out)
        let runId = try XCTUnwrap(run["run_id"]?.stringValue)
        let jobId = try XCTUnwrap(run["job_id"]?.stringValue)
        // The job's script names no URL: `ps` on the node shows the worker's command line to all.
        let script = sh(["scontrol", "write", "batch_script", jobId, "-"], cwd: "/")
        XCTAssertEqual(script.code, 0, script.err)
        XCTAssertTrue(script.out.contains("exec-task"), script.out)
        XCTAssertFalse(script.out.contains("http") || script.out.contains("X-Amz"), script.out)
        let s3 = try S3Client(settings: AWSSettings(environment: creds), endpoint: CloudTestEnv.s3)
        let prefix = "staging/tasks/\(runId)/0/"
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, try s3.head(bucket: bucket, key: prefix + "manifest.json") == nil { usleep(200_000) }
        let original = try s3.get(bucket: bucket, key: prefix + "task.json")
        // 1. task.json rewritten to run a command: the worker refuses it, nothing runs.
        let pwned = NSTemporaryDirectory() + "pwned-" + UUID().uuidString
        var task = try XCTUnwrap(try JSONParser.parse(original).objectValue)
        task["argv"] = ["/bin/sh", "-c", .string("touch \(pwned)")]
        _ = try s3.put(Array(JSONValue.object(task).canonical.utf8), bucket: bucket, key: prefix + "task.json")
        let url = try s3.presign("GET", bucket: bucket, key: prefix + "task.json", expires: 600)
        var workerEnv = ProcessInfo.processInfo.environment
        workerEnv[TaskSeal.urlVariable] = url
        workerEnv[TaskSeal.digestVariable] = Hashing.sha256Hex(original)
        workerEnv[TaskSeal.keyVariable] = String(repeating: "ab", count: 32)
        let worker = sh([TestPaths.repro, "exec-task"], cwd: "/tmp", env: workerEnv)
        XCTAssertNotEqual(worker.code, 0)
        XCTAssertTrue(worker.err.contains("replaced in storage"), worker.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned), "the rewritten task ran")
        // A URL on the command line is refused outright.
        XCTAssertEqual(sh([TestPaths.repro, "exec-task", url], cwd: "/tmp").code, 2)
        // 2. manifest.json replaced after --detach (the worker's key is not in the bucket).
        var manifest = try XCTUnwrap(try JSONParser.parse(try s3.get(bucket: bucket, key: prefix + "manifest.json")).objectValue)
        XCTAssertNotNil(manifest["mac"], "the worker signs its manifest")
        manifest["host"] = "forged-host"
        _ = try s3.put(Array(JSONValue.object(manifest).pretty.utf8), bucket: bucket, key: prefix + "manifest.json")
        let wait = repro(["wait", runId], cwd: repo.path, env: env)
        XCTAssertNotEqual(wait.code, 0)
        let show = parseJSON(repro(["show", runId, "--json"], cwd: repo.path, env: env).out)
        XCTAssertEqual(show["status"]?.stringValue, "failed")
        XCTAssertTrue(show["message"]?.stringValue?.contains("MAC does not verify") ?? false, show["message"]?.stringValue ?? "")
        XCTAssertEqual(show["outputs"]?.arrayValue?.count, 0)
    }

    /// A manifest that says succeeded for a job SLURM calls FAILED is not believed.
    func testTheSchedulersFailureOutweighsASuccessfulManifest() throws {
        try CloudTestEnv.require()
        let repo = try TempRepo()
        let (_, env) = try CloudTestEnv.addCloudBackend(to: repo)
        let config = try StoreConfig.load(storeRoot: repo.path + "/.repro", repoRoot: repo.path)
        let store = try Store(root: repo.path + "/.repro")
        let backend = try SlurmRestBackend(name: "cloud", settings: try XCTUnwrap(config.backends["cloud"]?.options as? SlurmRestSettings), store: store, environment: env)
        var m = TaskManifest.failure(runId: "r1", message: "")
        m.status = .succeeded
        m.exitCode = 0
        m.message = nil
        let failed = backend.finished(job: SlurmREST.Job(id: "42", state: "FAILED", exitCode: 1, signal: nil, node: "vm", reason: ""), manifest: m)
        XCTAssertEqual(failed.manifest?.status, .failed)
        XCTAssertTrue(failed.manifest?.message?.contains("FAILED (exit 1) but its manifest says it succeeded") ?? false)
        let fine = backend.finished(job: SlurmREST.Job(id: "42", state: "COMPLETED", exitCode: 0, signal: nil, node: "vm", reason: ""), manifest: m)
        XCTAssertEqual(fine.manifest?.status, .succeeded)
    }
}
