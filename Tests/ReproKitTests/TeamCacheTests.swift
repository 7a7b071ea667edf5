import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote
@testable import ReproStore

/// The team cache against a real S3-compatible server (moto), with two clones of one repository
/// (two users, two stores, two keys) driven through the CLI.
final class TeamCacheTests: XCTestCase {
    struct Team {
        let a: TempRepo
        let b: String
        let keys: String
        let bucket: String
        let env: [String: String]
        let client: S3Client
        var counterA: String { keys + "/counter-a" }
        var counterB: String { keys + "/counter-b" }
    }

    static func requireS3(_ endpoint: String = CloudTestEnv.s3) throws {
        // moto dumps its state for data.json without a lock: a request that changes it at that
        // moment (a job still uploading) makes it answer 500 once. Asked again, it answers.
        var up = false
        for attempt in 0..<5 where !up {
            if attempt > 0 { usleep(300_000) }
            up = sh(["curl", "-sf", "-o", "/dev/null", endpoint + "/moto-api/data.json"], cwd: "/").code == 0
        }
        guard up else {
            throw missingTestEnvironment("no S3-compatible test server at \(endpoint); start it with scripts/slurm-test-cluster.sh start")
        }
    }

    /// Repository A with the seeded sim, a 6-point sweep, a remote `origin` in a new bucket and
    /// alice's and bob's public keys trusted; B is a clone. Keys live outside both.
    func makeTeam(endpoint: String = CloudTestEnv.s3, sim: String? = nil, cacheExtra: String = "") throws -> Team {
        try TeamCacheTests.requireS3(endpoint)
        let a = try TempRepo.seeded()
        let keys = a.path + "-keys"
        let b = a.path + "-b"
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        addTeardownBlock {
            try? FileManager.default.removeItem(atPath: keys)
            try? FileManager.default.removeItem(atPath: b)
        }
        for who in ["alice", "bob", "mallory"] {
            XCTAssertEqual(repro(["keygen", "--out", keys + "/" + who], cwd: a.path).code, 0)
        }
        let bucket = "repro-tc-" + UUID().uuidString.prefix(8).lowercased()
        let client = try S3Client(settings: AWSSettings(environment: CloudTestEnv.creds), endpoint: endpoint, retry: RetryPolicy(attempts: 2, baseDelay: 0.05))
        try client.createBucket(bucket)
        a.write("keys/alice.pub", try String(contentsOfFile: keys + "/alice.pub", encoding: .utf8))
        a.write("keys/bob.pub", try String(contentsOfFile: keys + "/bob.pub", encoding: .utf8))
        if let sim { a.write("sim/seeded.sh", sim, executable: true) }
        a.write("sweep.yaml", "base: sim.yaml\ngrid:\n  params.n: [1, 2, 3, 4, 5, 6]\n")
        a.write(".repro.yaml", """
            # the team's settings
            cache:
              trusted_keys: [keys/alice.pub, keys/bob.pub]
            \(cacheExtra)
            """)
        let add = repro(["remote", "add", "origin", "s3://\(bucket)/team", "--endpoint", endpoint, "--default"], cwd: a.path)
        XCTAssertEqual(add.code, 0, add.err)
        a.commitAll("team setup", acceptSettings: false)
        XCTAssertEqual(sh(["git", "clone", "-q", a.path, b], cwd: "/").code, 0)
        // The committed remote names its endpoint: A typed it (`remote add`), B accepts it once.
        XCTAssertEqual(repro(["config", "trust", "--dry-run"], cwd: a.path).out.contains("nothing to accept"), true)
        XCTAssertEqual(repro(["config", "trust"], cwd: b).code, 0)
        var env = CloudTestEnv.creds
        env["REPRO_LOG_LEVEL"] = "notice"
        return Team(a: a, b: b, keys: keys, bucket: bucket, env: env, client: client)
    }

    func envA(_ t: Team) -> [String: String] { t.env.merging(["COUNTER_FILE": t.counterA]) { $1 } }
    func envB(_ t: Team) -> [String: String] { t.env.merging(["COUNTER_FILE": t.counterB]) { $1 } }

    /// A computes a sweep and pushes it; B pulls one point by key (a hit with byte-identical
    /// outputs), then runs the whole sweep and computes nothing.
    func testSecondUserPullsOnePointThenRunsTheSweepComputingNothing() throws {
        let t = try makeTeam()
        let sweepA = repro(["sweep", "sweep.yaml", "--json"], cwd: t.a.path, env: envA(t))
        XCTAssertEqual(sweepA.code, 0, sweepA.err)
        let pointsA = parseJSON(sweepA.out)["runs"]?.arrayValue ?? []
        XCTAssertEqual(pointsA.count, 6)
        let push = repro(["push", "sweep.yaml", "--key", t.keys + "/alice", "--json"], cwd: t.a.path, env: t.env)
        XCTAssertEqual(push.code, 0, push.err)
        XCTAssertEqual(parseJSON(push.out)["pushed"]?.intValue, 6)
        // Incremental: nothing twice.
        let again = parseJSON(repro(["push", "sweep.yaml", "--key", t.keys + "/alice", "--json"], cwd: t.a.path, env: t.env).out)
        XCTAssertEqual(again["pushed"]?.intValue, 0)
        XCTAssertEqual(again["already_present"]?.intValue, 6)
        XCTAssertEqual(again["blobs"]?.intValue, 0)

        // B pulls point 3 by key: it is in B's store, with A's outputs, byte for byte.
        let key3 = try XCTUnwrap(pointsA[2]["key"]?.stringValue)
        let dry = parseJSON(repro(["pull", key3, "--dry-run", "--json"], cwd: t.b, env: t.env).out)
        XCTAssertEqual(dry["pulled"]?.intValue, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: t.b + "/.repro/objects/" + key3.prefix(2)))
        let pull = repro(["pull", key3, "--json"], cwd: t.b, env: t.env)
        XCTAssertEqual(pull.code, 0, pull.err)
        XCTAssertEqual(parseJSON(pull.out)["pulled"]?.intValue, 1)
        let hit = repro(["run", "sim.yaml", "--set", "params.n=3", "--json"], cwd: t.b, env: envB(t))
        XCTAssertEqual(hit.code, 0, hit.err)
        let hitJSON = parseJSON(hit.out)
        XCTAssertEqual(hitJSON["cache"]?.stringValue, "hit")
        XCTAssertEqual(hitJSON["key"]?.stringValue, key3)
        XCTAssertEqual(hitJSON["origin"]?["remote"]?.stringValue, "origin")
        XCTAssertEqual(hitJSON["origin"]?["trusted_as"]?.stringValue, "keys/alice.pub")
        let dirA = t.a.path + "/results/seeded/" + key3.prefix(12)
        let dirB = t.b + "/results/seeded/" + key3.prefix(12)
        for name in ["result.json", "traj/0.csv", "traj/1.csv", "traj/2.csv"] {
            XCTAssertEqual(FileManager.default.contents(atPath: dirA + "/" + name), FileManager.default.contents(atPath: dirB + "/" + name), name)
            XCTAssertNotNil(FileManager.default.contents(atPath: dirB + "/" + name))
        }
        // The whole sweep: the default remote is read on a local miss; nothing is computed.
        let sweepB = repro(["sweep", "sweep.yaml", "--json"], cwd: t.b, env: envB(t))
        XCTAssertEqual(sweepB.code, 0, sweepB.err)
        let summary = parseJSON(sweepB.out)
        XCTAssertEqual(summary["hits"]?.intValue, 6)
        XCTAssertEqual(summary["succeeded"]?.intValue, 0)
        XCTAssertEqual(lineCount(t.counterB), 0, "B computed something")
        XCTAssertTrue(sweepB.err.contains("pulled 5 result(s)"), sweepB.err)
        // Audit in B says where it came from.
        let audit = repro(["audit", key3], cwd: t.b, env: t.env)
        XCTAssertTrue(audit.out.contains("origin     pulled from origin"), audit.out)
        // Pushing what was pulled re-signs nothing.
        let rePush = parseJSON(repro(["push", "--all", "--key", t.keys + "/bob", "--json"], cwd: t.b, env: t.env).out)
        XCTAssertEqual(rePush["pushed"]?.intValue, 0)
        XCTAssertEqual(rePush["skipped"]?.arrayValue?.count, 6)
    }

    /// A blob altered in the bucket, or a manifest copied under another key, is rejected on
    /// pull and nothing of it is stored.
    func testAlteredBlobAndCopiedManifestAreRejected() throws {
        let t = try makeTeam()
        let sweepA = parseJSON(repro(["sweep", "sweep.yaml", "--json"], cwd: t.a.path, env: envA(t)).out)
        let keys = (sweepA["runs"]?.arrayValue ?? []).compactMap { $0["key"]?.stringValue }
        XCTAssertEqual(repro(["push", "sweep.yaml", "--key", t.keys + "/alice"], cwd: t.a.path, env: t.env).code, 0)
        // Alter point 1's result.json in the bucket.
        let run1 = try XCTUnwrap((sweepA["runs"]?.arrayValue ?? [])[0]["run_id"]?.stringValue)
        let show = parseJSON(repro(["show", run1, "--json"], cwd: t.a.path, env: t.env).out)
        let result = try XCTUnwrap(show["outputs"]?.arrayValue?.first { $0["name"]?.stringValue == "result.json" }?["sha256"]?.stringValue)
        _ = try t.client.put(Array("{\"forged\": true}\n".utf8), bucket: t.bucket, key: "team/" + TeamCache.blobName(result))
        let pull = repro(["pull", keys[0], "--json"], cwd: t.b, env: t.env)
        XCTAssertEqual(pull.code, 1, pull.out + pull.err)
        let j = parseJSON(pull.out)
        XCTAssertEqual(j["pulled"]?.intValue, 0)
        XCTAssertTrue(j["rejected"]?.arrayValue?.first?["reason"]?.stringValue?.contains("does not hash to its name") == true, pull.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: t.b + "/.repro/objects/\(result.prefix(2))/\(result.dropFirst(2))"))
        XCTAssertNotEqual(repro(["show", run1], cwd: t.b, env: t.env).code, 0, "the run must not be in B's store")

        // A valid signed manifest of key 2 copied into key 3's folder (cache poisoning).
        let objects = try t.client.list(bucket: t.bucket, prefix: "team/" + CacheManifest.folder(key: keys[1]))
        let body = try t.client.get(bucket: t.bucket, key: try XCTUnwrap(objects.first?.key))
        let forgedName = "team/" + CacheManifest.folder(key: keys[2]) + (objects.first?.key.split(separator: "/").last.map(String.init) ?? "")
        _ = try t.client.put(body, bucket: t.bucket, key: forgedName)
        let pull3 = repro(["pull", keys[2], "--json"], cwd: t.b, env: t.env)
        let j3 = parseJSON(pull3.out)
        XCTAssertTrue(
            j3["rejected"]?.arrayValue?.contains { $0["reason"]?.stringValue?.contains("filed under another key") == true } == true, pull3.out)
        // The genuine manifest of key 3 still arrives.
        XCTAssertEqual(j3["pulled"]?.intValue, 1)
        XCTAssertEqual(repro(["fsck"], cwd: t.b, env: t.env).code, 0)
    }

    /// A result signed by a key nobody trusts, or unsigned, is never served; --trust-unsigned
    /// takes it and the run records that.
    func testUntrustedAndUnsignedResultsAreNotServed() throws {
        let t = try makeTeam()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: t.b, env: envB(t)).code, 0)
        let key = parseJSON(repro(["run", "sim.yaml", "--json"], cwd: t.b, env: envB(t)).out)["key"]?.stringValue ?? ""
        XCTAssertEqual(repro(["push", "sim.yaml", "--key", t.keys + "/mallory"], cwd: t.b, env: t.env).code, 0)
        let pull = repro(["pull", "sim.yaml", "--json"], cwd: t.a.path, env: t.env)
        XCTAssertEqual(pull.code, 0, pull.err)
        let j = parseJSON(pull.out)
        XCTAssertEqual(j["pulled"]?.intValue, 0)
        XCTAssertTrue(j["untrusted"]?.arrayValue?.first?["reason"]?.stringValue?.contains("not in cache.trusted_keys") == true, pull.out)
        // A run does not take it either: it computes, and says why the remote result was not used.
        let run = repro(["run", "sim.yaml", "--json"], cwd: t.a.path, env: envA(t))
        XCTAssertEqual(parseJSON(run.out)["cache"]?.stringValue, "miss")
        XCTAssertTrue(run.err.contains("not served"), run.err)
        XCTAssertEqual(lineCount(t.counterA), 1)

        // Unsigned, taken only with --trust-unsigned, and recorded as such.
        let c = try makeTeam()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: c.b, env: envB(c)).code, 0)
        XCTAssertEqual(repro(["push", "sim.yaml", "--unsigned"], cwd: c.b, env: c.env).code, 0)
        XCTAssertEqual(parseJSON(repro(["pull", key, "--json"], cwd: c.a.path, env: c.env).out)["pulled"]?.intValue, 0)
        let trusting = parseJSON(repro(["pull", key, "--trust-unsigned", "--json"], cwd: c.a.path, env: c.env).out)
        XCTAssertEqual(trusting["pulled"]?.intValue, 1)
        XCTAssertEqual(trusting["accepted_untrusted"]?.intValue, 1)
        let shown = parseJSON(repro(["run", "sim.yaml", "--json"], cwd: c.a.path, env: envA(c)).out)
        XCTAssertEqual(shown["origin"]?["trusted_as"]?.stringValue, "unsigned, accepted with --trust-unsigned")
    }

    /// Two trusted producers with different outputs for one key: both kept, pull and audit say so.
    func testDisagreeingProducersAreBothKeptAndReported() throws {
        // Ignores the seed: every execution writes a different result.
        let noisy = "#!/bin/sh\nset -eu\nhead -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n' > \"$REPRO_OUTDIR/result.json\"\n"
        let t = try makeTeam(sim: noisy)
        t.a.write("sim.yaml", "name: noisy\ncommand: [sim/seeded.sh]\ncode: [sim/]\noutputs: [result.json]\nseed: 1\n")
        t.a.commitAll("noisy")
        XCTAssertEqual(sh(["git", "pull", "-q", "--ff-only"], cwd: t.b).code, 0)
        let runA = parseJSON(repro(["run", "sim.yaml", "--json"], cwd: t.a.path, env: t.env).out)
        XCTAssertEqual(repro(["push", "sim.yaml", "--key", t.keys + "/alice"], cwd: t.a.path, env: t.env).code, 0)
        // B computes the same key without looking at the remote, and pushes its own result.
        let runB = parseJSON(repro(["run", "sim.yaml", "--json"], cwd: t.b, env: t.env.merging(["REPRO_NO_REMOTE": "1"]) { $1 }).out)
        XCTAssertEqual(runA["key"], runB["key"])
        XCTAssertEqual(repro(["push", "sim.yaml", "--key", t.keys + "/bob"], cwd: t.b, env: t.env).code, 0)
        let key = try XCTUnwrap(runA["key"]?.stringValue)
        XCTAssertEqual(try t.client.list(bucket: t.bucket, prefix: "team/" + CacheManifest.folder(key: key)).count, 2, "nothing overwritten")
        let pull = repro(["pull", key], cwd: t.a.path, env: t.env)
        XCTAssertEqual(pull.code, 0, pull.err)
        XCTAssertTrue(pull.out.contains("REPRODUCIBILITY FINDING: key \(key.prefix(12)) has 2 different results"), pull.out)
        let audit = repro(["audit", key], cwd: t.a.path, env: t.env)
        XCTAssertTrue(audit.out.contains("FINDING    this key has 2 different results"), audit.out)
        XCTAssertTrue(audit.out.contains("computed here by"), audit.out)
        XCTAssertTrue(audit.out.contains("pulled from origin, keys/bob.pub"), audit.out)
        let auditJSON = parseJSON(repro(["audit", key, "--json"], cwd: t.a.path, env: t.env).out)
        XCTAssertEqual(auditJSON["runs"]?.arrayValue?.count ?? auditJSON["entries"]?.arrayValue?.count, 2)
    }

    /// The remote stops answering in the middle of a pull: a clear error, and what was pulled
    /// before is complete in the store (fsck clean).
    func testRemoteStoppedMidPullLeavesACompleteStore() throws {
        let moto = try MotoServer()
        let t = try makeTeam(endpoint: moto.endpoint)
        let sweepA = parseJSON(repro(["sweep", "sweep.yaml", "--json"], cwd: t.a.path, env: envA(t)).out)
        let keys = (sweepA["runs"]?.arrayValue ?? []).compactMap { $0["key"]?.stringValue }
        XCTAssertEqual(repro(["push", "sweep.yaml", "--key", t.keys + "/alice"], cwd: t.a.path, env: t.env).code, 0)

        let ctx = try TeamCacheCommands.context(from: t.b, environment: t.env)
        let cache = try TeamCacheCommands.open(ctx, remote: nil)
        cache.chunk = 2
        var rounds = 0
        XCTAssertThrowsError(
            try cache.pull(keys: keys) { _ in
                rounds += 1
                if rounds == 1 { moto.stop() }
            }
        ) { error in
            let e = error as? RemoteError
            XCTAssertEqual(e?.exitCode, 6)
            XCTAssertTrue(e?.message.contains("The 2 run(s) pulled before are complete in the store") == true, "\(error)")
            XCTAssertTrue(e?.message.contains("origin (s3://\(t.bucket)/team)") == true, "\(error)")
        }
        let pulled = try ctx.store.succeededRuns(forKeys: keys)
        XCTAssertEqual(pulled.count, 2)
        for r in pulled { for h in r.blobHashes { XCTAssertEqual(ctx.store.checkBlob(h), .intact) } }
        XCTAssertEqual(try ctx.store.integrityCheck(), ["ok"])
        // The CLI says the same, with exit 6.
        let cli = repro(["pull", "sweep.yaml"], cwd: t.b, env: t.env)
        XCTAssertEqual(cli.code, 6, cli.err)
        XCTAssertTrue(cli.err.contains(moto.endpoint.replacingOccurrences(of: "http://", with: "")) || cli.err.contains("origin"), cli.err)
    }

    /// A remote that cannot be reached: `repro run` says so once, loudly, and computes
    /// locally; with `read: true` it is an error.
    func testUnreachableRemoteIsReportedAndTheRunGoesOn() throws {
        try TeamCacheTests.requireS3()
        let repo = try TempRepo.seeded()
        repo.write(".repro.yaml", "remotes:\n  origin: {url: s3://nowhere-bucket/x, endpoint: http://127.0.0.1:9, default: true}\n")
        repo.commitAll("remote")
        let run = repro(["run", "sim.yaml"], cwd: repo.path, env: CloudTestEnv.creds)
        XCTAssertEqual(run.code, 0, run.err)
        XCTAssertEqual(run.err.components(separatedBy: "WARNING: team cache origin").count - 1, 1, run.err)
        XCTAssertTrue(run.out.contains("cache miss"))
        repo.write(".repro.yaml", "remotes:\n  origin: {url: s3://nowhere-bucket/x, endpoint: http://127.0.0.1:9, default: true}\ncache:\n  remote: {read: true}\n")
        let strict = repro(["run", "sim.yaml", "--set", "params.n=4"], cwd: repo.path, env: CloudTestEnv.creds)
        XCTAssertEqual(strict.code, 6, strict.err)
        // The first result is intact.
        XCTAssertEqual(repro(["fsck"], cwd: repo.path).code, 0)
    }

    /// `cache.remote.write: true` pushes what a run computes (a CI runner for the team).
    func testWritingRunnerPushesWhatItComputes() throws {
        let t = try makeTeam()
        try FileManager.default.createDirectory(atPath: t.b + "/.repro", withIntermediateDirectories: true)
        try "cache:\n  remote: {name: origin, write: true}\n  signing_key: \(t.keys)/bob\n".write(
            toFile: t.b + "/.repro/config.yaml", atomically: true, encoding: .utf8)
        let run = repro(["run", "sim.yaml", "--set", "params.n=7", "--json"], cwd: t.b, env: envB(t))
        XCTAssertEqual(run.code, 0, run.err)
        XCTAssertTrue(run.err.contains("pushed 1 result(s)"), run.err)
        let pull = parseJSON(repro(["pull", "--json", try XCTUnwrap(parseJSON(run.out)["key"]?.stringValue)], cwd: t.a.path, env: t.env).out)
        XCTAssertEqual(pull["pulled"]?.intValue, 1)
    }

    /// `repro remote add|list|remove` edit only the remotes section of .repro.yaml.
    func testRemoteCommandsEditOnlyTheirSection() throws {
        let repo = try TempRepo.seeded()
        repo.write(".repro.yaml", "# keep me\ncache:\n  max_age: 7d  # a week\n")
        XCTAssertEqual(repro(["remote", "add", "origin", "s3://team-bucket/cache", "--default"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["remote", "add", "lab", "s3://lab-bucket", "--endpoint", "http://minio.lab:9000"], cwd: repo.path).code, 0)
        let dup = repro(["remote", "add", "lab", "s3://x-bucket"], cwd: repo.path)
        XCTAssertEqual(dup.code, 2)
        XCTAssertTrue(dup.err.contains("already exists"), dup.err)
        let bad = repro(["remote", "add", "x", "http://not-s3"], cwd: repo.path)
        XCTAssertEqual(bad.code, 2)
        XCTAssertTrue(bad.err.contains("not an s3:// URL"), bad.err)
        let text = repo.read(".repro.yaml") ?? ""
        XCTAssertTrue(text.hasPrefix("# keep me\ncache:\n  max_age: 7d  # a week\n"), text)
        let config = try StoreConfig.load(storeRoot: repo.path + "/.repro", repoRoot: repo.path)
        XCTAssertEqual(config.remotes["lab"]?.endpoint, "http://minio.lab:9000")
        XCTAssertEqual(try config.remote(named: nil).name, "origin")
        let list = parseJSON(repro(["remote", "list", "--json"], cwd: repo.path).out)
        XCTAssertEqual(list["remotes"]?.arrayValue?.count, 2)
        XCTAssertEqual(repro(["remote", "remove", "origin"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["remote", "remove", "origin"], cwd: repo.path).code, 2)
        let after = try StoreConfig.load(storeRoot: repo.path + "/.repro", repoRoot: repo.path)
        XCTAssertEqual(Array(after.remotes.keys), ["lab"])
        XCTAssertTrue((repo.read(".repro.yaml") ?? "").contains("max_age: 7d  # a week"))
        // Secrets are refused where they would be committed.
        repo.write(".repro.yaml", "remotes:\n  lab: {url: s3://lab-bucket, secret_access_key: abc}\n")
        let refused = repro(["remote", "list"], cwd: repo.path)
        XCTAssertEqual(refused.code, 2)
        XCTAssertTrue(refused.err.contains("secrets do not belong"), refused.err)
    }

    /// gc removes old manifests and the blobs only they named; it keeps an old manifest whose
    /// output a kept run used as an input, and never a blob a kept manifest names.
    func testRemoteGCKeepsWhatIsStillNamed() throws {
        let t = try makeTeam()
        XCTAssertEqual(repro(["sweep", "sweep.yaml"], cwd: t.a.path, env: envA(t)).code, 0)
        XCTAssertEqual(repro(["push", "sweep.yaml", "--key", t.keys + "/alice"], cwd: t.a.path, env: t.env).code, 0)
        let ctx = try TeamCacheCommands.context(from: t.a.path, environment: t.env)
        let cache = try TeamCacheCommands.open(ctx, remote: nil)
        let blobsBefore = try t.client.list(bucket: t.bucket, prefix: "team/cas/").count
        // Nothing is old yet: nothing goes.
        let fresh = try cache.gc(keepDays: 1, grace: 0)
        XCTAssertEqual(fresh.manifestsRemoved, 0)
        XCTAssertEqual(fresh.blobsRemoved, 0)
        // Two days on, with no grace: a dry run first, then the real thing.
        let later = Clock.now() + 2 * 86400
        let dry = try cache.gc(keepDays: 1, grace: 0, dryRun: true, now: later)
        XCTAssertEqual(dry.manifestsRemoved, 6)
        XCTAssertEqual(try t.client.list(bucket: t.bucket, prefix: "team/manifests/").count, 6)
        let done = try cache.gc(keepDays: 1, grace: 0, now: later)
        XCTAssertEqual(done.manifestsRemoved, 6)
        XCTAssertEqual(done.blobsRemoved, blobsBefore)
        XCTAssertEqual(try t.client.list(bucket: t.bucket, prefix: "team/").count, 0)

        // Lineage: an old producer of a kept run's input stays.
        let producer = RunRecord.sample(runId: "p", outputs: [OutputFile(name: "x.csv", sha256: String(repeating: "a", count: 64), size: 1)])
        var consumer = RunRecord.sample(runId: "c", outputs: [])
        consumer.inputs = [InputFile(path: "data/x.csv", sha256: String(repeating: "a", count: 64), size: 1)]
        let unrelated = RunRecord.sample(runId: "u", outputs: [OutputFile(name: "y", sha256: String(repeating: "b", count: 64), size: 1)])
        XCTAssertEqual(TeamCache.retained([(producer, true), (consumer, false), (unrelated, true)]), [true, true, false])
    }
}

extension RunRecord {
    static func sample(runId: String, outputs: [OutputFile]) -> RunRecord {
        RunRecord(
            runId: runId, key: String(repeating: "0", count: 64), name: "s", specPath: "s.yaml", configHash: "", config: [:], commit: "",
            commitSummary: "", code: RecordedCode(), dirty: false, dirtyFiles: [], patchBlob: nil, seed: 1, solver: [:], inputs: [], env: [:],
            command: [], backend: "local", resources: [:], timeoutS: nil, host: "h", os: "linux", reproVersion: "t", executablePath: nil,
            executableSha256: nil, status: .succeeded, exitCode: 0, message: nil, pid: nil, startedAt: "", finishedAt: nil, durationS: nil,
            stdoutBlob: nil, stderrBlob: nil, outputs: outputs, hitCount: 0)
    }
}
