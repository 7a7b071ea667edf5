import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproRemote
@testable import ReproStore
@testable import ReproSupport

/// Contract tests of the slurmrestd shapes repro speaks: v0.0.38 is also exercised for real
/// against the test cluster (RemoteTests); v0.0.40 / v0.0.41 only here, on the documented JSON
/// (no server of those versions runs on Debian 12).
final class SlurmRESTContractTests: XCTestCase {
    let request = SlurmREST.JobRequest(
        script: "#!/bin/sh\nexec repro exec-task 'URL'\n", name: "repro-x", array: "0-9%4", workdir: "/tmp",
        environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"], timeLimitMinutes: 11, cpus: 2, memoryMB: 4096, partition: "debug",
        account: nil, qos: nil, standardOutput: "/tmp/repro-slurm-%j.log")

    func testSubmitBodies() {
        let old = SlurmREST.submitBody(request, version: "v0.0.38")
        XCTAssertEqual(old["script"]?.stringValue, request.script)
        XCTAssertEqual(old["job"]?["environment"]?["PATH"]?.stringValue, "/usr/bin:/bin")
        XCTAssertEqual(old["job"]?["time_limit"], .int(11))
        XCTAssertEqual(old["job"]?["array"]?.stringValue, "0-9%4")
        let new = SlurmREST.submitBody(request, version: "v0.0.40")
        XCTAssertNil(new["script"])
        XCTAssertEqual(new["job"]?["script"]?.stringValue, request.script)
        XCTAssertEqual(new["job"]?["environment"]?.arrayValue?.compactMap(\.stringValue), ["LANG=C.UTF-8", "PATH=/usr/bin:/bin"])
        XCTAssertEqual(new["job"]?["time_limit"]?["number"], .int(11))
        XCTAssertEqual(new["job"]?["time_limit"]?["set"], .bool(true))
        XCTAssertEqual(new["job"]?["memory_per_node"]?["number"], .int(4096))
    }

    func testJobsOfBothVersions() throws {
        // As the real v0.0.38 server on the test cluster answered (exit 2 arrives as 512).
        let old = try JSONParser.parse("""
            {"jobs": [{"job_id": 4366, "array_job_id": 4366, "array_task_id": 2, "job_state": "FAILED", "exit_code": 512,
                       "nodes": "vm", "state_reason": "NonZeroExitCode"},
                      {"job_id": 4367, "array_job_id": 4366, "array_task_id": 0, "job_state": "COMPLETED", "exit_code": 0, "nodes": "vm"},
                      {"job_id": 4370, "array_job_id": 0, "array_task_id": null, "job_state": "CANCELLED", "exit_code": 15, "nodes": ""}],
             "errors": []}
            """)
        XCTAssertEqual(SlurmREST.parseJobs(old), [
            .init(id: "4366_2", state: "FAILED", exitCode: 2, signal: nil, node: "vm", reason: "NonZeroExitCode"),
            .init(id: "4366_0", state: "COMPLETED", exitCode: 0, signal: nil, node: "vm", reason: ""),
            .init(id: "4370", state: "CANCELLED", exitCode: nil, signal: 15, node: "", reason: ""),
        ])
        let new = try JSONParser.parse("""
            {"jobs": [{"job_id": 9001, "array_job_id": {"set": true, "infinite": false, "number": 9000},
                       "array_task_id": {"set": true, "infinite": false, "number": 1}, "job_state": ["FAILED"],
                       "exit_code": {"status": ["EXIT_CODE"], "return_code": {"set": true, "infinite": false, "number": 3},
                                     "signal": {"id": {"set": false, "infinite": false, "number": 0}, "name": ""}},
                       "nodes": "compute-1", "state_reason": "NonZeroExitCode"},
                      {"job_id": 9100, "array_job_id": {"set": true, "infinite": false, "number": 0},
                       "array_task_id": {"set": false, "infinite": false, "number": 0}, "job_state": ["RUNNING", "COMPLETING"],
                       "exit_code": {"status": ["PENDING"], "return_code": {"set": false, "infinite": false, "number": 0}}, "nodes": "compute-2"}],
             "errors": [], "warnings": []}
            """)
        XCTAssertEqual(SlurmREST.parseJobs(new), [
            .init(id: "9000_1", state: "FAILED", exitCode: 3, signal: nil, node: "compute-1", reason: "NonZeroExitCode"),
            .init(id: "9100", state: "RUNNING", exitCode: nil, signal: nil, node: "compute-2", reason: ""),
        ])
    }

    /// Array tasks still waiting come as one record with no task id and the indices as text:
    /// each index is a job of its own, waiting, never "forgotten by the scheduler".
    func testWaitingArrayTasksAreOneRecordExpandedPerIndex() throws {
        // As the real v0.0.38 server answered with the node drained (22.05.8).
        let old = try JSONParser.parse("""
            {"jobs": [{"job_id": 7880, "array_job_id": 7880, "array_task_id": null, "array_task_string": "0-2",
                       "job_state": "PENDING", "state_reason": "Resources", "nodes": ""},
                      {"job_id": 7883, "array_job_id": 7880, "array_task_id": 3, "job_state": "RUNNING", "nodes": "vm"}],
             "errors": []}
            """)
        XCTAssertEqual(SlurmREST.parseJobs(old).map(\.id), ["7880_0", "7880_1", "7880_2", "7880_3"])
        XCTAssertEqual(Set(SlurmREST.parseJobs(old).prefix(3).map(\.state)), ["PENDING"])
        XCTAssertEqual(SlurmREST.parseJobs(old).first?.reason, "Resources")
        // v0.0.40 and later: the unset task id is {"set": false}; a throttle and steps in the text.
        let new = try JSONParser.parse("""
            {"jobs": [{"job_id": 9000, "array_job_id": {"set": true, "infinite": false, "number": 9000},
                       "array_task_id": {"set": false, "infinite": false, "number": 0}, "array_task_string": "1,4-8:2%2",
                       "job_state": ["PENDING"], "state_reason": "ReqNodeNotAvail, UnavailableNodes:compute-[1-4]", "nodes": ""}],
             "errors": [], "warnings": []}
            """)
        XCTAssertEqual(SlurmREST.parseJobs(new).map(\.id), ["9000_1", "9000_4", "9000_6", "9000_8"])
        // SLURM's NO_VAL as a task id is unset too.
        let noVal = try JSONParser.parse(#"{"jobs": [{"job_id": 5, "array_job_id": 5, "array_task_id": 4294967294, "array_task_string": "0-1", "job_state": "PENDING"}]}"#)
        XCTAssertEqual(SlurmREST.parseJobs(noVal).map(\.id), ["5_0", "5_1"])
        XCTAssertEqual(SlurmREST.arrayIndices("0-3%1"), [0, 1, 2, 3])
        XCTAssertEqual(SlurmREST.arrayIndices("7"), [7])
        for bad in ["", "a-b", "5-2", "0-4:0", "-1", "0-99999999"] { XCTAssertNil(SlurmREST.arrayIndices(bad), bad) }
        // Not an array's waiting record: left as it is.
        let plain = try JSONParser.parse(#"{"jobs": [{"job_id": 6, "array_job_id": 0, "array_task_id": null, "array_task_string": "", "job_state": "PENDING"}]}"#)
        XCTAssertEqual(SlurmREST.parseJobs(plain).map(\.id), ["6"])
    }

    /// The three ways a token is sent, and a minted token's claims (what auth/jwt reads).
    func testAuthHeadersAndMintedTokens() throws {
        let t = SlurmREST.mintToken(user: "alice", key: Array("k".utf8), now: 1_700_000_000, lifespan: 600)
        XCTAssertEqual(SlurmREST.tokenUser(t), "alice")
        XCTAssertEqual(SlurmREST.tokenExpiry(t), 1_700_000_600)
        XCTAssertEqual(t.split(separator: ".").count, 3)
        let store = try Store(root: NSTemporaryDirectory() + "auth-" + UUID().uuidString)
        for (auth, expected) in [
            (SlurmRestSettings.Auth.userToken, ["X-SLURM-USER-NAME: alice", "X-SLURM-USER-TOKEN: T"]), (.token, ["X-SLURM-USER-TOKEN: T"]),
            (.bearer, ["Authorization: Bearer T"]),
        ] {
            var s = SlurmRestSettings(origin: "test")
            s.url = "http://127.0.0.1:6820"
            s.user = "alice"
            s.auth = auth
            s.staged.staging = try S3Location(parsing: "s3://stage-bucket/p", what: "staging")
            let b = try SlurmRestBackend(name: "c", settings: s, store: store, environment: [:])
            XCTAssertEqual(b.authHeaders("T").map { "\($0.name): \($0.value)" }, expected, auth.rawValue)
        }
    }

    func testVersionDiscoveryTokenExpiryAndSizes() throws {
        let doc = try JSONParser.parse(#"{"paths": {"/slurm/v0.0.39/ping": {}, "/slurm/v0.0.40/job/submit": {}, "/slurm/v0.0.38/diag": {}}}"#)
        XCTAssertEqual(SlurmREST.pickVersion(openapi: doc), "v0.0.40")
        XCTAssertNil(SlurmREST.pickVersion(openapi: try JSONParser.parse(#"{"paths": {"/slurm/v0.0.37/ping": {}}}"#)))
        // header.{"exp":1700000000,"iat":1690000000,"sun":"reprotest"}.signature
        let payload = Data(#"{"exp":1700000000,"iat":1690000000,"sun":"reprotest"}"#.utf8).base64EncodedString()
            .replacingOccurrences(of: "=", with: "").replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        XCTAssertEqual(SlurmREST.tokenExpiry("eyJhbGciOiJIUzI1NiJ9.\(payload).c2ln"), 1_700_000_000)
        XCTAssertNil(SlurmREST.tokenExpiry("not-a-jwt"))
        XCTAssertEqual(SlurmREST.megabytes("8G"), 8192)
        XCTAssertEqual(SlurmREST.megabytes("512M"), 512)
        XCTAssertEqual(SlurmREST.megabytes("1024"), 1024)
        XCTAssertNil(SlurmREST.megabytes("lots"))
    }
}
