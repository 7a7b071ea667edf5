import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote
@testable import ReproExecution

/// AWS Batch through its contract test server (fixtures/contract/aws_batch_server.py: the
/// documented REST subset, signatures checked with botocore, each job run as a local process
/// with Batch's environment) and staging through the S3-compatible test server. Contract
/// tests: what AWS documents, not AWS itself.
final class AWSBatchContractTests: XCTestCase {
    /// A running contract server; stopped when released.
    final class Server {
        let contract: ContractServer
        var endpoint: String { "http://127.0.0.1:\(contract.port)" }

        init(_ extra: [String] = []) throws {
            // Jobs run as the cluster's unprivileged test user where it exists (CI makes it), as
            // a container's user is not the host's root.
            let runAs = getpwnam("reprotest") != nil ? ["--run-as", "reprotest"] : []
            contract = try ContractServer(script: "aws_batch_server.py", arguments: runAs + extra, whatIsMissing: "python3 with botocore")
        }

        func requests() -> [JSONValue] { contract.testList("requests") }
    }

    /// The example simulation (fixtures/dna-repair) with an `aws` backend staging through a new
    /// bucket on the S3 test server.
    static func repo(_ server: Server, queue: String = "repro-queue", population: Int = 40, settings: String = "") throws -> (TempRepo, [String: String]) {
        try TeamCacheTests.requireS3()
        let repo = try TempRepo()
        try repo.writeDNARepair(population: population)
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  seed: [\((1...20).map(String.init).joined(separator: ", "))]\n")
        let bucket = "repro-batch-" + UUID().uuidString.prefix(8).lowercased()
        let client = try S3Client(settings: AWSSettings(environment: CloudTestEnv.creds), endpoint: CloudTestEnv.s3)
        try client.createBucket(bucket)
        repo.write(".repro.yaml", """
            backends:
              aws:
                type: aws-batch
                job_queue: \(queue)
                job_definition: repro-jobdef:3
                staging: s3://\(bucket)/staging
                endpoint: \(CloudTestEnv.s3)
                batch_endpoint: \(server.endpoint)
                poll_interval: 0.3s
                manifest_grace: 5s
            \(settings)
            """)
        repo.commitAll("aws batch")
        return (repo, CloudTestEnv.creds)
    }

    func testExampleSimulationAndVerifyAgainstLocal() throws {
        let server = try Server()
        let (repo, env) = try Self.repo(server)
        let local = repro(["run", "sim.yaml", "--backend", "local", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(local.code, 0, local.err)
        let aws = repro(["run", "sim.yaml", "--backend", "aws", "--no-cache", "--no-fallback", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(aws.code, 0, aws.err)
        let run = parseJSON(aws.out)
        XCTAssertEqual(run["backend"]?.stringValue, "aws")
        XCTAssertEqual(run["backend_type"]?.stringValue, "aws-batch")
        XCTAssertNotNil(run["job_id"]?.stringValue)
        XCTAssertEqual(outputHashes(run), outputHashes(parseJSON(local.out)))
        XCTAssertGreaterThanOrEqual(outputHashes(run).count, 2)
        // What the contract server received: one job, Batch's own retries off, the worker command.
        let submits = server.requests().filter { $0["action"]?.stringValue == "submitjob" }
        XCTAssertEqual(submits.count, 1)
        XCTAssertEqual(submits.first?["body"]?["retryStrategy"]?["attempts"]?.intValue, 1)
        XCTAssertEqual(submits.first?["body"]?["containerOverrides"]?["command"]?.arrayValue?.first?.stringValue, "repro")
        XCTAssertEqual(submits.first?["body"]?["timeout"]?["attemptDurationSeconds"]?.intValue, 660)

        let verify = repro(["verify", "sim.yaml", "--backends", "local,aws"], cwd: repo.path, env: env)
        XCTAssertEqual(verify.code, 0, verify.out + verify.err)
        XCTAssertTrue(verify.out.contains("IDENTICAL"), verify.out)
    }

    /// 20 points as one array job of 20 children, each reading its task from its array index;
    /// the outputs hash as a local run of the same sweep does.
    func testTwentyPointSweepIsOneArrayJobAndMatchesLocal() throws {
        // Children wait RUNNABLE and start over 3 s, as capacity comes.
        let server = try Server(["--start-over", "3"])
        let (repo, env) = try Self.repo(server, population: 20)
        let aws = repro(["sweep", "sweep.yaml", "--backend", "aws", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(aws.code, 0, aws.err)
        let points = parseJSON(aws.out)["runs"]?.arrayValue ?? []
        XCTAssertEqual(points.filter { $0["status"]?.stringValue == "succeeded" && $0["backend"]?.stringValue == "aws" }.count, 20)
        let submits = server.requests().filter { $0["action"]?.stringValue == "submitjob" }
        XCTAssertEqual(submits.count, 1)
        XCTAssertEqual(submits.first?["body"]?["arrayProperties"]?["size"]?.intValue, 20)
        // Polled through the parent's status summary and ListJobs, never child by child.
        let requests = server.requests()
        let described = requests.filter { $0["action"]?.stringValue == "describejobs" }.flatMap { $0["body"]?["jobs"]?.arrayValue ?? [] }
        XCTAssertFalse(described.isEmpty)
        XCTAssertTrue(described.allSatisfy { $0.stringValue?.contains(":") == false }, "a child was described: \(described)")
        let lists = requests.filter { $0["action"]?.stringValue == "listjobs" }
        XCTAssertFalse(lists.isEmpty)
        XCTAssertTrue(lists.allSatisfy { $0["body"]?["arrayJobId"]?.stringValue != nil && $0["body"]?["jobStatus"]?.stringValue != nil }, "\(lists)")
        // The same sweep computed locally in a clone: the same outputs, point by point.
        repo.assertSweepMatchesLocalClone(points, env: env)
    }

    /// Throttled requests are retried with backoff; a child whose host is reclaimed (spot) is
    /// resubmitted by repro as a new attempt, and the record says so.
    func testThrottlingAndALostHost() throws {
        let server = try Server(["--throttle", "3", "--lose", "1"])
        let (repo, env) = try Self.repo(server, population: 20)
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  seed: [1, 2, 3]\n")
        repo.commitAll("three points")
        let r = repro(["sweep", "sweep.yaml", "--backend", "aws", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err)
        let points = parseJSON(r.out)["runs"]?.arrayValue ?? []
        XCTAssertEqual(points.filter { $0["status"]?.stringValue == "succeeded" }.count, 3, r.out)
        let requests = server.requests()
        XCTAssertEqual(requests.filter { $0["action"]?.stringValue?.hasPrefix("throttled:") == true }.count, 3, "throttled, then retried")
        let submits = requests.filter { $0["action"]?.stringValue == "submitjob" }
        XCTAssertEqual(submits.count, 2, "the array, then the lost child alone")
        XCTAssertNil(submits.last?["body"]?["arrayProperties"])
        let lost = try XCTUnwrap(points.first { p in
            parseJSON(repro(["show", p["run_id"]?.stringValue ?? "", "--json"], cwd: repo.path, env: env).out)["resubmissions"]?.intValue == 1
        })
        let shown = repro(["show", lost["run_id"]?.stringValue ?? ""], cwd: repo.path, env: env)
        XCTAssertTrue(shown.out.contains("2 attempts"), shown.out)
    }

    /// Setup errors are not outages: expired credentials and a queue Batch does not know end
    /// in exit 6 with the fix, even with fallback on (the default), and nothing runs locally.
    func testExpiredCredentialsAndAMissingQueueAreClearErrorsNotFallbacks() throws {
        let server = try Server(["--expired-key", "AKIDEXPIRED"])
        let (repo, env) = try Self.repo(server)
        var expired = env
        expired["AWS_ACCESS_KEY_ID"] = "AKIDEXPIRED"
        let r = repro(["run", "sim.yaml", "--backend", "aws"], cwd: repo.path, env: expired)
        XCTAssertEqual(r.code, 6, r.err)
        XCTAssertTrue(r.err.contains("ExpiredTokenException") && r.err.contains("refresh them"), r.err)
        XCTAssertFalse(r.err.contains("falling back to local"), r.err)
        XCTAssertTrue(r.err.contains("not an outage"), r.err)

        let (missing, env2) = try Self.repo(server, queue: "no-such-queue")
        let m = repro(["run", "sim.yaml", "--backend", "aws"], cwd: missing.path, env: env2)
        XCTAssertEqual(m.code, 6, m.err)
        XCTAssertTrue(m.err.contains("no-such-queue") && m.err.contains("job_queue"), m.err)
        XCTAssertFalse(m.err.contains("falling back to local"), m.err)
        let log = parseJSON(repro(["log", "--json"], cwd: missing.path, env: env2).out)
        XCTAssertFalse("\(log)".contains("\"local\""), "nothing ran locally: \(log)")
        let check = repro(["backends"], cwd: missing.path, env: env2)
        XCTAssertEqual(check.code, 6)
        XCTAssertTrue((check.out + check.err).contains("backends.aws.job_queue 'no-such-queue' does not exist"), check.out + check.err)
        // A sweep sent there by `auto` says so too, instead of moving its points to the laptop.
        missing.write("sweep.yaml", "base: sim.yaml\nbackend: auto\ngrid:\n  seed: [1, 2]\n")
        missing.write(".repro.yaml", (try String(contentsOfFile: missing.path + "/.repro.yaml", encoding: .utf8))
            + "orchestration: {cloud: aws, queue_depth_threshold: 0}\n")
        missing.commitAll("auto sweep")
        let sw = repro(["sweep", "sweep.yaml"], cwd: missing.path, env: env2)
        XCTAssertEqual(sw.code, 6, sw.err)
        XCTAssertTrue(sw.err.contains("job_queue"), sw.err)
        XCTAssertFalse(repro(["log", "--json"], cwd: missing.path, env: env2).out.contains("\"local\""), "no point ran locally")
    }

    /// DescribeJobs throttled in a burst longer than one call's retries: repro keeps polling
    /// (backoff) and collects the job; it never terminates it nor runs it again locally.
    func testAThrottledPollNeverCancelsTheJob() throws {
        let server = try Server(["--throttle-burst", "describejobs:2:9"])
        let (repo, env) = try Self.repo(server)
        let r = repro(["run", "sim.yaml", "--backend", "aws", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err)
        let run = parseJSON(r.out)
        XCTAssertEqual(run["backend"]?.stringValue, "aws", r.err)
        XCTAssertEqual(run["fallback"], .null)
        XCTAssertTrue(r.err.contains("the submitted tasks run on"), r.err)
        let requests = server.requests()
        XCTAssertEqual(requests.filter { $0["action"]?.stringValue == "throttled:describejobs" }.count, 9)
        XCTAssertTrue(requests.filter { $0["action"]?.stringValue?.hasSuffix("terminatejob") == true }.isEmpty, "terminated: \(requests)")
    }

    /// The session expires while the job runs: repro stops waiting with exit 6 and the fix,
    /// terminates nothing, runs nothing locally; the run stays running, and once the
    /// credentials work again `repro wait` collects the job's result.
    func testCredentialsExpiringMidRunLeaveTheRunForReproWait() throws {
        let server = try Server(["--expire-on", "describejobs:2"])
        let (repo, env) = try Self.repo(server, population: 20)
        let r = repro(["run", "sim.yaml", "--backend", "aws"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 6, r.err)
        XCTAssertTrue(r.err.contains("ExpiredTokenException"), r.err)
        XCTAssertTrue(r.err.contains("stays recorded as running") && r.err.contains("refresh the credentials") && r.err.contains("repro wait"), r.err)
        XCTAssertFalse(r.err.contains("falling back"), r.err)
        let requests = server.requests()
        XCTAssertTrue(requests.filter { $0["action"]?.stringValue?.hasSuffix("terminatejob") == true }.isEmpty, "terminated: \(requests)")
        let runs = parseJSON(repro(["log", "--json"], cwd: repo.path, env: env).out).arrayValue ?? []
        XCTAssertEqual(runs.count, 1, "\(runs)")
        XCTAssertEqual(runs.first?["status"]?.stringValue, "running")
        let runId = try XCTUnwrap(runs.first?["run_id"]?.stringValue)
        // The job finishes on Batch meanwhile; the user refreshes the credentials and waits.
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !server.contract.testList("jobs").contains(where: { $0["status"]?.stringValue == "SUCCEEDED" }) {
            usleep(200_000)
        }
        _ = sh(["curl", "-s", "http://127.0.0.1:\(server.contract.port)/_test/renew"], cwd: "/")
        let w = repro(["wait", runId], cwd: repo.path, env: env)
        XCTAssertEqual(w.code, 0, w.err)
        let shown = parseJSON(repro(["show", runId, "--json"], cwd: repo.path, env: env).out)
        XCTAssertEqual(shown["status"]?.stringValue, "succeeded", "\(shown)")
        XCTAssertEqual(shown["backend"]?.stringValue, "aws")
        XCTAssertEqual(server.requests().filter { $0["action"]?.stringValue == "submitjob" }.count, 1, "computed once")
    }

    /// jobName takes only [A-Za-z0-9_-] and at most 128 characters (the contract server
    /// refuses anything else); a spec's name is cut down to that.
    func testJobNamesKeepToBatchsCharacters() {
        XCTAssertEqual(AWSBatchBackend.jobName("Überlauf Ω-test_1 日本"), "repro-berlauf-test_1")
        XCTAssertEqual(AWSBatchBackend.jobName("seirs.v2/run"), "repro-seirsv2run")
        XCTAssertEqual(AWSBatchBackend.jobName(String(repeating: "a", count: 300)).count, 128)
    }

    /// `staging_auth: job-role`: the worker gets `s3://` URLs and signs its own requests with
    /// the job role's credentials (the container endpoint Batch gives a task); outputs above
    /// the part size go up in parts. No presigned URL is made.
    func testJobRoleStagingUploadsOutputsInPartsWithTheContainersCredentials() throws {
        let creds = try ContractServer(script: "aws_credentials_server.py", arguments: [], whatIsMissing: "python3")
        let server = try Server(["--job-role-credentials", "http://127.0.0.1:\(creds.port)/ecs/creds"])
        let (repo, env) = try Self.repo(server, settings: "    staging_auth: job-role\n    part_size: 5M\n")
        repo.write("big.yaml", """
            name: big
            command: [sh, -c, 'yes repro | head -c 12582912 > "$REPRO_OUTDIR/big.bin"']
            outputs: [big.bin]

            """)
        repo.commitAll("a 12 MiB output")
        let r = repro(["run", "big.yaml", "--backend", "aws", "--no-fallback", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err)
        let expected = sh(["sh", "-c", "yes repro | head -c 12582912 | sha256sum"], cwd: "/").out.prefix(64)
        XCTAssertEqual(outputHashes(parseJSON(r.out))["big.bin"], String(expected))
        let submit = try XCTUnwrap(server.requests().first { $0["action"]?.stringValue == "submitjob" })
        let taskURL = submit["body"]?["containerOverrides"]?["environment"]?.arrayValue?.first { $0["name"]?.stringValue == "REPRO_TASK_URL" }
        XCTAssertTrue(taskURL?["value"]?.stringValue?.hasPrefix("s3://") ?? false, "\(String(describing: taskURL))")
        XCTAssertFalse(submit.canonical.contains("X-Amz-Signature"), "a presigned URL was made")
        XCTAssertFalse(creds.testList("requests").filter { $0["source"]?.stringValue == "container" }.isEmpty, "the worker used the job role")
    }

    /// Credentials that expire before the task URLs would are warned of at submission, with
    /// what to do (the run itself goes ahead).
    func testShortLivedCredentialsAreWarnedOfAtSubmission() throws {
        let server = try Server()
        let (repo, _) = try Self.repo(server, population: 20)
        let home = NSTemporaryDirectory() + "awsproc-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        defer { FileIO.removeTree(home) }
        try """
            #!/bin/sh
            printf '{"Version": 1, "AccessKeyId": "AKIDREPROTEST", "SecretAccessKey": "reprotestsecret", "SessionToken": "t", "Expiration": "%s"}' "$(date -u -d '+50 minutes' +%Y-%m-%dT%H:%M:%SZ)"

            """.write(toFile: home + "/creds.sh", atomically: true, encoding: .utf8)
        chmod(home + "/creds.sh", 0o755)
        try "[profile short]\ncredential_process = \(home)/creds.sh\nregion = us-east-1\n".write(
            toFile: home + "/.aws/config", atomically: true, encoding: .utf8)
        let env = ["HOME": home, "AWS_PROFILE": "short", "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_EC2_METADATA_DISABLED": "true"]
        let r = repro(["run", "sim.yaml", "--backend", "aws", "--no-fallback"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("WARNING: the credentials signing the task URLs expire in") && r.err.contains("staging_auth: job-role"), r.err)
    }
}
