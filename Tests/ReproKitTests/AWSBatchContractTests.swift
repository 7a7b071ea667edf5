import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote

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
            contract = try ContractServer(script: "aws_batch_server.py", arguments: extra, whatIsMissing: "python3 with botocore")
        }

        func requests() -> [JSONValue] { contract.testList("requests") }
    }

    /// The example simulation (fixtures/dna-repair) with an `aws` backend staging through a new
    /// bucket on the S3 test server.
    func repo(_ server: Server, queue: String = "repro-queue", population: Int = 40) throws -> (TempRepo, [String: String]) {
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

            """)
        repo.commitAll("aws batch")
        return (repo, CloudTestEnv.creds)
    }

    func testExampleSimulationAndVerifyAgainstLocal() throws {
        let server = try Server()
        let (repo, env) = try repo(server)
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
        let server = try Server()
        let (repo, env) = try repo(server, population: 20)
        let aws = repro(["sweep", "sweep.yaml", "--backend", "aws", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(aws.code, 0, aws.err)
        let points = parseJSON(aws.out)["runs"]?.arrayValue ?? []
        XCTAssertEqual(points.filter { $0["status"]?.stringValue == "succeeded" && $0["backend"]?.stringValue == "aws" }.count, 20)
        let submits = server.requests().filter { $0["action"]?.stringValue == "submitjob" }
        XCTAssertEqual(submits.count, 1)
        XCTAssertEqual(submits.first?["body"]?["arrayProperties"]?["size"]?.intValue, 20)
        // The same sweep computed locally in a clone: the same outputs, point by point.
        repo.assertSweepMatchesLocalClone(points, env: env)
    }

    /// Throttled requests are retried with backoff; a child whose host is reclaimed (spot) is
    /// resubmitted by repro as a new attempt, and the record says so.
    func testThrottlingAndALostHost() throws {
        let server = try Server(["--throttle", "3", "--lose", "1"])
        let (repo, env) = try repo(server, population: 20)
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

    func testExpiredCredentialsAndAMissingQueueAreClearErrors() throws {
        let server = try Server(["--expired-key", "AKIDEXPIRED"])
        let (repo, env) = try repo(server)
        var expired = env
        expired["AWS_ACCESS_KEY_ID"] = "AKIDEXPIRED"
        let r = repro(["run", "sim.yaml", "--backend", "aws", "--no-fallback"], cwd: repo.path, env: expired)
        XCTAssertEqual(r.code, 6, r.err)
        XCTAssertTrue(r.err.contains("ExpiredTokenException") && r.err.contains("refresh them"), r.err)

        let (missing, env2) = try self.repo(server, queue: "no-such-queue")
        let m = repro(["run", "sim.yaml", "--backend", "aws", "--no-fallback"], cwd: missing.path, env: env2)
        XCTAssertEqual(m.code, 6, m.err)
        XCTAssertTrue(m.err.contains("no-such-queue") && m.err.contains("job_queue"), m.err)
        let check = repro(["backends"], cwd: missing.path, env: env2)
        XCTAssertEqual(check.code, 6)
        XCTAssertTrue((check.out + check.err).contains("job queue 'no-such-queue' does not exist"), check.out + check.err)
    }
}
