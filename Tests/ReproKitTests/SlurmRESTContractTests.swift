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

    /// Checks a body against the pydantic model pyslurmutils generates from SchedMD's OpenAPI
    /// description of `version` (fixtures/contract/slurm_models.py: unknown fields are errors).
    func checkModel(_ body: JSONValue, version: String, model: String, file: StaticString = #filePath, line: UInt = #line) {
        let r = sh(["python3", TestPaths.root + "/fixtures/contract/slurm_models.py", version, model], cwd: "/", stdin: body.canonical)
        XCTAssertNotEqual(r.code, 3, "the models are not installed: run scripts/deps.sh --test (\(r.err))", file: file, line: line)
        XCTAssertEqual(r.code, 0, "\(version) \(model): \(r.out)\(r.err)", file: file, line: line)
    }

    /// What repro sends to v0.0.40 through v0.0.44 fits each version's own model, with and
    /// without the optional fields; and the checker does catch a wrong shape.
    func testSubmitBodiesFitEveryVersionsModel() throws {
        var bare = request
        bare.array = nil
        bare.partition = nil
        bare.timeLimitMinutes = nil
        bare.memoryMB = nil
        bare.cpus = nil
        for v in ["v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44"] {
            XCTAssertTrue(SlurmREST.supported.contains(v))
            checkModel(SlurmREST.submitBody(request, version: v), version: v, model: "JobSubmitReq")
            checkModel(SlurmREST.submitBody(bare, version: v), version: v, model: "JobSubmitReq")
        }
        // v0.0.38's shape (the environment as a mapping, numbers plain) is not v0.0.44's.
        let wrong = sh(
            ["python3", TestPaths.root + "/fixtures/contract/slurm_models.py", "v0.0.44", "JobSubmitReq"], cwd: "/",
            stdin: SlurmREST.submitBody(request, version: "v0.0.38").canonical)
        XCTAssertEqual(wrong.code, 1, wrong.out + wrong.err)
        XCTAssertTrue(wrong.out.contains("environment"), wrong.out)
    }

    /// Answers as each version's model describes them (the model checks them first): a waiting
    /// array's one record, a running task, a failed one with its exit code, one killed by a
    /// signal, the worker's comment; and a submission queued with an error beside its job id.
    func testJobAnswersOfEveryVersionFitTheirModelAndParse() throws {
        func n(_ v: Int, set: Bool = true) -> String { #"{"set": \#(set), "infinite": false, "number": \#(v)}"# }
        let answer = try JSONParser.parse("""
            {"jobs": [
              {"job_id": 9000, "array_job_id": \(n(9000)), "array_task_id": \(n(0, set: false)), "array_task_string": "2-3",
               "job_state": ["PENDING"], "state_reason": "Resources", "nodes": "", "comment": ""},
              {"job_id": 9001, "array_job_id": \(n(9000)), "array_task_id": \(n(0)), "job_state": ["RUNNING"], "nodes": "compute-1",
               "exit_code": {"status": ["PENDING"], "return_code": \(n(0, set: false))}},
              {"job_id": 9002, "array_job_id": \(n(9000)), "array_task_id": \(n(1)), "job_state": ["FAILED"], "nodes": "compute-2",
               "state_reason": "NonZeroExitCode", "comment": "repro-worker: setup line 1 failed (exit 1): module load x",
               "exit_code": {"status": ["EXIT_CODE"], "return_code": \(n(97)), "signal": {"id": \(n(0, set: false)), "name": ""}}},
              {"job_id": 9010, "array_job_id": \(n(0)), "array_task_id": \(n(0, set: false)), "job_state": ["CANCELLED"], "nodes": "compute-3",
               "exit_code": {"status": ["SIGNALED"], "return_code": \(n(0, set: false)), "signal": {"id": {"set": true, "infinite": false, "number": 9}, "name": "KILL"}}}
            ], "errors": [], "warnings": []}
            """)
        let submitted = try JSONParser.parse("""
            {"job_id": 9020, "step_id": "batch",
             "errors": [{"error_number": 2068, "error": "Requested node configuration is not available", "description": "Required node not available (down, drained or reserved)", "source": "slurm_submit_batch_job()"}],
             "warnings": []}
            """)
        for v in ["v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44"] {
            checkModel(answer, version: v, model: "OpenapiJobInfoResp")
            checkModel(submitted, version: v, model: "OpenapiJobSubmitResponse")
        }
        let jobs = SlurmREST.parseJobs(answer)
        XCTAssertEqual(jobs.map(\.id), ["9000_2", "9000_3", "9000_0", "9000_1", "9010"])
        XCTAssertEqual(jobs.map(\.state), ["PENDING", "PENDING", "RUNNING", "FAILED", "CANCELLED"])
        XCTAssertEqual(jobs[3].exitCode, 97)
        XCTAssertTrue(jobs[3].comment.hasPrefix(SlurmRestBackend.workerCommentPrefix))
        XCTAssertEqual(jobs[4].signal, 9)
        XCTAssertEqual(SlurmREST.intValue(submitted["job_id"]), 9020)
        XCTAssertEqual(SlurmREST.errors(submitted), ["Required node not available (down, drained or reserved): Requested node configuration is not available"])
    }

    /// AWS PCS wants the user's POSIX identity in the token: `uid`, `gid` and `id.gids` join
    /// the claims when `token_uid` is set; it needs `token_gid` and a key to mint with.
    func testMintedTokensCarryThePosixIdentityPCSWants() throws {
        let token = SlurmREST.mintToken(
            user: "alice", key: Array("k".utf8), now: 1_700_000_000, lifespan: 600, identity: PosixIdentity(uid: 1001, gid: 1001, gids: [1001, 2000]))
        let claims = try XCTUnwrap(SlurmREST.claims(token))
        XCTAssertEqual(claims["sun"]?.stringValue, "alice")
        XCTAssertEqual(claims["uid"]?.intValue, 1001)
        XCTAssertEqual(claims["gid"]?.intValue, 1001)
        XCTAssertEqual(claims["id"]?["gids"]?.arrayValue?.compactMap(\.intValue), [1001, 2000])
        XCTAssertEqual(claims["exp"]?.intValue, 1_700_000_600)
        XCTAssertNil(SlurmREST.claims(SlurmREST.mintToken(user: "bob", key: [1], now: 0, lifespan: 60))?["uid"])

        func parse(_ extra: String) throws -> StoreConfig {
            try StoreConfig.interpret(try SpecNode.parse("""
                backends:
                  pcs:
                    type: slurm-rest
                    url: https://10.0.0.5:6820
                    user: alice
                    auth: bearer
                    staging: s3://lab-bucket/repro
                \(extra)
                """, file: ".repro.yaml"))
        }
        let ok = try parse("    token_key_file: /home/alice/.pcs-jwt.key\n    token_uid: 1001\n    token_gid: 1001\n    token_gids: [1001, 2000]")
        XCTAssertEqual((ok.backends["pcs"]?.options as? SlurmRestSettings)?.tokenIdentity, PosixIdentity(uid: 1001, gid: 1001, gids: [1001, 2000]))
        XCTAssertThrowsError(try parse("    token_key_file: /k\n    token_uid: 1001")) { e in
            XCTAssertTrue("\(e)".contains("token_uid and token_gid go together"), "\(e)")
        }
        XCTAssertThrowsError(try parse("    token_env: T\n    token_uid: 1001\n    token_gid: 1001")) { e in
            XCTAssertTrue("\(e)".contains("set token_key_file too"), "\(e)")
        }
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
