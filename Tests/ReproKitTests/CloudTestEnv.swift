import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproRemote

/// The remote test environment scripts/slurm-test-cluster.sh starts: slurmrestd with JWT,
/// an S3-compatible server (moto), and the unprivileged user `reprotest` jobs run as.
enum CloudTestEnv {
    static let rest = "http://127.0.0.1:6820"
    static let s3 = "http://127.0.0.1:9000"
    static let creds = ["AWS_ACCESS_KEY_ID": "AKIDREPROTEST", "AWS_SECRET_ACCESS_KEY": "reprotestsecret", "AWS_REGION": "us-east-1"]

    static func require() throws {
        try requireSlurmCluster()
        let restUp = sh(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", rest + "/openapi/v3"], cwd: "/")
        let s3Up = sh(["curl", "-sf", "-o", "/dev/null", s3 + "/moto-api/data.json"], cwd: "/")
        let user = sh(["id", "reprotest"], cwd: "/")
        guard restUp.out != "000", s3Up.code == 0, user.code == 0 else {
            let reason = "the remote test environment is not running (slurmrestd \(restUp.out), S3 rc \(s3Up.code), user reprotest rc "
                + "\(user.code)); start it with scripts/slurm-test-cluster.sh start"
            throw missingTestEnvironment(reason)
        }
    }

    /// Stops slurmrestd (the cluster and its jobs go on). Call the returned closure (in a defer)
    /// to bring it back: through repro's own spawner, since the script leaves daemons behind and
    /// Foundation's Process has been seen to miss the script's own exit then.
    static func stopSlurmrestd(file: StaticString = #filePath, line: UInt = #line) -> () -> Void {
        let pidFile = "/run/repro-slurm/slurmrestd.pid"
        let pid = Int32((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        XCTAssertGreaterThan(pid, 0, "slurmrestd is not running", file: file, line: line)
        if pid > 0 { kill(pid, SIGTERM) }
        return {
            let r = try? CommandOutput.run(
                [TestPaths.root + "/scripts/slurm-test-cluster.sh", "start"], environment: ProcessInfo.processInfo.environment, timeout: 180)
            XCTAssertEqual(r?.status, 0, r?.stderr ?? "could not restart slurmrestd", file: file, line: line)
        }
    }

    /// Not SLURM_JWT: the SLURM CLI (the shared-folder backend, run as root here) would use
    /// that token, which is reprotest's.
    static let tokenVariable = "REPRO_TEST_SLURM_TOKEN"

    static func token(lifespan: Int = 3600) -> String {
        let out = sh(["scontrol", "token", "username=reprotest", "lifespan=\(lifespan)"], cwd: "/").out
        return out.trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: "SLURM_JWT=", with: "")
    }

    /// A token the cluster itself would have issued (signed with its JWT key) that expired a
    /// minute ago: an expired token without waiting for one to expire.
    static func expiredToken(user: String = "reprotest") -> String {
        let script = """
            import base64, hashlib, hmac, json, sys, time
            key = open("/var/lib/slurm/slurmctld/jwt_hs256.key", "rb").read()
            b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=")
            now = int(time.time())
            head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
            body = b64(json.dumps({"iat": now - 3600, "exp": now - 60, "sun": sys.argv[1]}).encode())
            sig = b64(hmac.new(key, head + b"." + body, hashlib.sha256).digest())
            print((head + b"." + body + b"." + sig).decode())
            """
        return sh(["python3", "-c", script, user], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes a `cloud` backend (slurm-rest, staging into a new bucket) into the repository's
    /// .repro.yaml (not committed); returns the bucket and the environment a run needs.
    static func addCloudBackend(to repo: TempRepo, extraConfig: String = "", reproPath: String = TestPaths.repro) throws
        -> (String, [String: String])
    {
        let bucket = "repro-t-" + UUID().uuidString.prefix(8).lowercased()
        let client = try S3Client(settings: AWSSettings(environment: creds), endpoint: s3)
        try client.createBucket(bucket)
        repo.write(".repro.yaml", """
            backends:
              cloud:
                type: slurm-rest
                url: \(rest)
                user: reprotest
                token_env: \(tokenVariable)
                staging: s3://\(bucket)/staging
                endpoint: \(s3)
                repro_path: \(reproPath)
                poll_interval: 0.5s
            \(extraConfig)
            """)
        var env = creds
        env[tokenVariable] = token()
        return (bucket, env)
    }
}
