import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproRemote
@testable import ReproSupport

/// slurm-rest against a contract server of AWS PCS's Slurm REST API (v0.0.43, Bearer tokens
/// with the POSIX identity claims PCS requires, bodies checked against SchedMD's v0.0.43 models:
/// fixtures/contract/pcs_slurmrest_server.py), staging in the local S3 server. Jobs run as local
/// processes. A contract test: it has not met AWS PCS itself.
final class PCSContractTests: XCTestCase {
    func pcsRepo(identity: Bool = true, auth: String = "bearer") throws -> (TempRepo, ContractServer, [String: String]) {
        try CloudTestEnv.require()
        let key = NSTemporaryDirectory() + "pcs-jwt-" + UUID().uuidString + ".key"
        FileManager.default.createFile(atPath: key, contents: Data((0..<32).map { _ in UInt8.random(in: 0...255) }), attributes: [.posixPermissions: 0o600])
        addTeardownBlock { unlink(key) }
        let server = try ContractServer(
            script: "pcs_slurmrest_server.py", arguments: ["--key", key, "--auth", auth], whatIsMissing: "python3 with pydantic and pyslurmutils")
        let bucket = "repro-pcs-" + UUID().uuidString.prefix(8).lowercased()
        try S3Client(settings: AWSSettings(environment: CloudTestEnv.creds), endpoint: CloudTestEnv.s3).createBucket(bucket)
        let repo = try TempRepo()
        try repo.writeDNARepair(population: 30)
        repo.write(".repro.yaml", """
            backends:
              pcs:
                type: slurm-rest
                url: http://127.0.0.1:\(server.port)
                auth: \(auth)
                user: alice
                token_key_file: \(key)
            \(identity ? "    token_uid: 1001\n    token_gid: 1001\n    token_gids: [1001, 2000]" : "")
                staging: s3://\(bucket)/staging
                endpoint: \(CloudTestEnv.s3)
                repro_path: \(TestPaths.repro)
                poll_interval: 0.3s
            """)
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  params.dose_gy: [0.5, 1.0, 1.5]\nbackend: pcs\n")
        repo.commitAll("pcs")
        return (repo, server, CloudTestEnv.creds)
    }

    func testRunsAndSweepsGoThroughBearerTokensWithThePosixIdentity() throws {
        let (repo, server, env) = try pcsRepo()
        let run = repro(["run", "sim.yaml", "--backend", "pcs", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(run.code, 0, run.err)
        XCTAssertEqual(parseJSON(run.out)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(parseJSON(run.out)["backend_type"]?.stringValue, "slurm-rest")
        let sweep = repro(["sweep", "sweep.yaml"], cwd: repo.path, env: env)
        XCTAssertEqual(sweep.code, 0, sweep.err)
        let requests = server.testList("requests")
        XCTAssertGreaterThan(requests.count, 5)
        for r in requests where r["path"]?.stringValue?.hasPrefix("/slurm/") == true {
            XCTAssertEqual(r["problem"]?.stringValue, "", "\(r)")
            XCTAssertEqual(r["claims"]?["sun"]?.stringValue, "alice")
            XCTAssertEqual(r["claims"]?["uid"]?.intValue, 1001)
            XCTAssertEqual(r["claims"]?["id"]?["gids"]?.arrayValue?.compactMap(\.intValue), [1001, 2000])
            XCTAssertEqual(r["x_slurm_user_token"], .bool(false), "Bearer alone: \(r)")
        }
        XCTAssertTrue(requests.contains { $0["path"]?.stringValue == "/slurm/v0.0.43/job/submit" }, "v0.0.43 was discovered and spoken")
    }

    /// `auth: token`, as a self-managed slurmrestd of Slurm 23.02 or later takes it: the token
    /// header alone, the user being the token's `sun`.
    func testTheTokenHeaderAloneIsAcceptedWhereTheServerTakesIt() throws {
        let (repo, server, env) = try pcsRepo(identity: false, auth: "token")
        let run = repro(["run", "sim.yaml", "--backend", "pcs", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(run.code, 0, run.err)
        let requests = server.testList("requests").filter { $0["path"]?.stringValue?.hasPrefix("/slurm/") == true }
        XCTAssertFalse(requests.isEmpty)
        for r in requests {
            XCTAssertEqual(r["problem"]?.stringValue, "", "\(r)")
            XCTAssertEqual(r["x_slurm_user_token"], .bool(true), "\(r)")
            XCTAssertEqual(r["x_slurm_user_name"], .bool(false), "no user header with auth: token: \(r)")
            XCTAssertEqual(r["authorization"], .bool(false), "\(r)")
        }
    }

    func testATokenWithoutTheIdentityIsRefusedWithTheFix() throws {
        let (repo, server, env) = try pcsRepo(identity: false)
        let r = withExtendedLifetime(server) { repro(["run", "sim.yaml", "--backend", "pcs", "--no-fallback"], cwd: repo.path, env: env) }
        XCTAssertEqual(r.code, 6, r.out + r.err)
        XCTAssertTrue(r.err.contains("claim uid is required"), r.err)
        XCTAssertTrue(r.err.contains("token_uid, token_gid, token_gids"), r.err)
    }
}
