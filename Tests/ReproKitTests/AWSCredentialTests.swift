import Crypto
import Foundation
import XCTest

@testable import ReproKit
@testable import ReproRemote
@testable import ReproSupport

/// The AWS SDKs' credential chain, each source against something that answers as AWS does:
/// moto's STS (AssumeRole, AssumeRoleWithWebIdentity), fixtures/contract/aws_credentials_server.py
/// for the SSO portal, the container endpoint and IMDSv2 (named contract tests: what AWS
/// documents, not AWS), and a real credential_process program. Every error names the profile
/// and the fix.
final class AWSCredentialTests: XCTestCase {
    /// A home folder with ~/.aws/config and credentials, and the environment that points there.
    struct Home {
        let dir: String
        var env: [String: String]

        init(config: String, credentials: String = "", extra: [String: String] = [:]) throws {
            dir = NSTemporaryDirectory() + "awshome-" + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(atPath: dir + "/.aws/sso/cache", withIntermediateDirectories: true)
            try config.write(toFile: dir + "/.aws/config", atomically: true, encoding: .utf8)
            try credentials.write(toFile: dir + "/.aws/credentials", atomically: true, encoding: .utf8)
            env = ["HOME": dir, "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"]
            env.merge(extra) { _, b in b }
        }

        func credentials(profile: String) throws -> AWSCredentials {
            var e = env
            e["AWS_PROFILE"] = profile
            return try AWSSettings(environment: e).credentials()
        }

        func remove() { FileIO.removeTree(dir) }
    }

    func tokenServer(_ extra: [String] = []) throws -> ContractServer {
        try ContractServer(script: "aws_credentials_server.py", arguments: extra, whatIsMissing: "python3")
    }

    func unique() -> String { "p" + UUID().uuidString.prefix(8).lowercased() }

    /// A profile using IAM Identity Center through an sso-session block.
    func ssoConfig(profile: String, session: String, region: String = "eu-west-1") -> String {
        "[profile \(profile)]\nsso_session = \(session)\nsso_account_id = 123456789012\nsso_role_name = ReproRunner\nregion = \(region)\n\n"
            + "[sso-session \(session)]\nsso_region = \(region)\nsso_start_url = https://example.awsapps.com/start\n"
    }

    /// Where `aws sso login` caches a session's token: the SHA-1 of the session's name.
    func ssoCacheFile(_ home: Home, session: String) -> String {
        home.dir + "/.aws/sso/cache/" + Insecure.SHA1.hash(data: Array(session.utf8)).map { String(format: "%02x", $0) }.joined() + ".json"
    }

    func testARoleIsAssumedThroughSTSFromASourceProfileAndCachedUntilNearItsExpiry() throws {
        // A moto of its own: STS state breaks the shared server's /moto-api/data.json (its
        // readiness probe) for every test after.
        let sts = try MotoServer()
        let p = unique()
        let home = try Home(
            config: """
                [profile \(p)]
                role_arn = arn:aws:iam::123456789012:role/repro
                source_profile = base-\(p)
                duration_seconds = 900
                region = us-east-1

                """,
            credentials: "[base-\(p)]\naws_access_key_id = AKIDBASE\naws_secret_access_key = basesecret\n",
            extra: ["AWS_ENDPOINT_URL_STS": sts.endpoint])
        defer { home.remove() }
        let c = try home.credentials(profile: p)
        XCTAssertTrue(c.accessKeyId.hasPrefix("ASIA"), "moto's STS issues temporary keys: \(c.accessKeyId)")
        XCTAssertNotNil(c.sessionToken)
        let left = try XCTUnwrap(c.expiration) - Clock.now()
        XCTAssertTrue(left > 800 && left <= 900, "DurationSeconds 900: \(left)")
        // Cached: the same temporary keys again (moto gives new ones per call).
        XCTAssertEqual(try home.credentials(profile: p).accessKeyId, c.accessKeyId)
        // Close to expiry, fetched again.
        AWSSettings.cache.withLock { cache in
            for k in cache.keys where k.contains(":\(p):") { cache[k]?.expiration = Clock.now() + 60 }
        }
        XCTAssertNotEqual(try home.credentials(profile: p).accessKeyId, c.accessKeyId, "refreshed 5 minutes before it expires")
    }

    func testWebIdentityFromTheEnvironmentAndFromAProfile() throws {
        let sts = try MotoServer()
        let home = try Home(config: "", extra: ["AWS_ENDPOINT_URL_STS": sts.endpoint])
        defer { home.remove() }
        try "eyJhbGciOiJSUzI1NiJ9.token.sig".write(toFile: home.dir + "/token", atomically: true, encoding: .utf8)
        var env = home.env
        env["AWS_WEB_IDENTITY_TOKEN_FILE"] = home.dir + "/token"
        env["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/web-\(unique())"
        let c = try AWSSettings(environment: env).credentials()
        XCTAssertTrue(c.accessKeyId.hasPrefix("ASIA"), c.accessKeyId)
        XCTAssertNotNil(c.expiration)
        // The same from a profile's web_identity_token_file.
        let p = unique()
        try "[profile \(p)]\nrole_arn = arn:aws:iam::123456789012:role/web-\(p)\nweb_identity_token_file = \(home.dir)/token\n"
            .write(toFile: home.dir + "/.aws/config", atomically: true, encoding: .utf8)
        XCTAssertTrue(try home.credentials(profile: p).accessKeyId.hasPrefix("ASIA"))
        // A missing token file is named.
        env["AWS_ROLE_ARN"] = "arn:aws:iam::123456789012:role/web-\(unique())"
        env["AWS_WEB_IDENTITY_TOKEN_FILE"] = home.dir + "/missing"
        XCTAssertThrowsError(try AWSSettings(environment: env).credentials()) { e in
            XCTAssertTrue("\(e)".contains(home.dir + "/missing"), "\(e)")
        }
    }

    func testSSOUsesTheCachedLoginAndSaysToLogInWhenItIsMissingOrExpired() throws {
        let token = "tok-\(unique())"
        let server = try tokenServer(["--sso-token", token])
        let p = unique()
        let session = "corp-\(p)"
        let home = try Home(config: ssoConfig(profile: p, session: session), extra: ["AWS_ENDPOINT_URL_SSO": "http://127.0.0.1:\(server.port)"])
        defer { home.remove() }
        XCTAssertThrowsError(try home.credentials(profile: p)) { e in
            XCTAssertTrue("\(e)".contains("aws sso login --profile \(p)") && "\(e)".contains("no cached login"), "\(e)")
        }
        let cacheFile = ssoCacheFile(home, session: session)
        try "{\"accessToken\": \"\(token)\", \"expiresAt\": \"\(Clock.iso8601(Clock.now() + 3600))\", \"region\": \"eu-west-1\"}"
            .write(toFile: cacheFile, atomically: true, encoding: .utf8)
        let c = try home.credentials(profile: p)
        XCTAssertEqual(c.accessKeyId, "ASIAREPROTEMP")
        XCTAssertTrue(c.sessionToken?.hasPrefix("sso-session-") ?? false)
        XCTAssertNotNil(c.expiration)
        // An expired login says so, with the command that renews it.
        try "{\"accessToken\": \"old\", \"expiresAt\": \"2020-01-01T00:00:00Z\"}".write(toFile: cacheFile, atomically: true, encoding: .utf8)
        let q = unique()
        let other = try Home(config: ssoConfig(profile: q, session: session))
        defer { other.remove() }
        try FileManager.default.copyItem(atPath: cacheFile, toPath: ssoCacheFile(other, session: session))
        XCTAssertThrowsError(try other.credentials(profile: q)) { e in
            XCTAssertTrue("\(e)".contains("expired") && "\(e)".contains("aws sso login --profile \(q)"), "\(e)")
        }
    }

    func testCredentialProcessIsRunAndItsFailuresNamed() throws {
        let p = unique()
        let home = try Home(config: "[profile \(p)]\ncredential_process = sh creds.sh --role \"a b\"\n")
        defer { home.remove() }
        let script = home.dir + "/creds.sh"
        try """
            [ "$2" = "a b" ] || { echo "bad argument: $2" >&2; exit 3; }
            printf '{"Version": 1, "AccessKeyId": "AKIDPROC", "SecretAccessKey": "procsecret", "SessionToken": "proctoken", "Expiration": "%s"}' "$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"

            """.write(toFile: script, atomically: true, encoding: .utf8)
        // Run in the home folder: the command's relative path resolves there.
        let cwd = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(home.dir)
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        let c = try home.credentials(profile: p)
        XCTAssertEqual(c.accessKeyId, "AKIDPROC")
        XCTAssertEqual(c.sessionToken, "proctoken")
        XCTAssertNotNil(c.expiration)
        let q = unique()
        let failing = try Home(config: "[profile \(q)]\ncredential_process = sh -c 'echo token expired >&2; exit 4'\n")
        defer { failing.remove() }
        XCTAssertThrowsError(try failing.credentials(profile: q)) { e in
            XCTAssertTrue("\(e)".contains("profile '\(q)'") && "\(e)".contains("exited 4") && "\(e)".contains("token expired"), "\(e)")
        }
    }

    func testContainerAndInstanceCredentialsRefreshBeforeTheyExpire() throws {
        // Credentials that expire in 200 s: inside the 5-minute window, so fetched every time.
        let server = try tokenServer(["--expires-in", "200"])
        let home = try Home(config: "")
        defer { home.remove() }
        try "container-auth-token".write(toFile: home.dir + "/auth", atomically: true, encoding: .utf8)
        var env = home.env
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:\(server.port)/ecs/creds"
        env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = home.dir + "/auth"
        let a = try AWSSettings(environment: env).credentials()
        let b = try AWSSettings(environment: env).credentials()
        XCTAssertEqual(a.accessKeyId, "ASIAREPROTEMP")
        XCTAssertNotEqual(a.sessionToken, b.sessionToken, "refetched: it expires within 5 minutes")
        XCTAssertEqual(server.testList("requests").filter { $0["source"]?.stringValue == "container" }.count, 2)
        // The wrong authorization token is refused, and said.
        try "wrong".write(toFile: home.dir + "/auth", atomically: true, encoding: .utf8)
        var wrong = env
        wrong["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:\(server.port)/ecs/creds?x=\(unique())"
        XCTAssertThrowsError(try AWSSettings(environment: wrong).credentials()) { e in XCTAssertTrue("\(e)".contains("HTTP 403"), "\(e)") }

        // IMDSv2: a token first, then the role's credentials (v1 requests are refused).
        let imds = try tokenServer(["--expires-in", "3600"])
        var ienv = home.env
        ienv.removeValue(forKey: "AWS_EC2_METADATA_DISABLED")
        ienv["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:\(imds.port)/"
        let i = try AWSSettings(environment: ienv).credentials()
        XCTAssertEqual(i.accessKeyId, "ASIAREPROTEMP")
        _ = try AWSSettings(environment: ienv).credentials()
        let asked = imds.testList("requests").map { $0["source"]?.stringValue ?? "" }
        XCTAssertEqual(asked, ["imds-token", "imds", "imds"], "one fetch (cached for its hour): token, role, credentials")
    }

    func testProfileErrorsNameTheProfileAndTheFix() throws {
        let p = unique()
        let home = try Home(config: """
            [profile mfa-\(p)]
            role_arn = arn:aws:iam::123456789012:role/x
            source_profile = mfa-\(p)
            mfa_serial = arn:aws:iam::123456789012:mfa/me

            [profile nosource-\(p)]
            role_arn = arn:aws:iam::123456789012:role/x

            [profile missing-\(p)]
            role_arn = arn:aws:iam::123456789012:role/x
            source_profile = nowhere-\(p)

            [profile loop-\(p)]
            role_arn = arn:aws:iam::123456789012:role/x
            source_profile = loop2-\(p)

            [profile loop2-\(p)]
            role_arn = arn:aws:iam::123456789012:role/y
            source_profile = loop-\(p)

            """)
        defer { home.remove() }
        func message(_ profile: String) -> String {
            do {
                _ = try home.credentials(profile: profile)
                return "no error"
            } catch { return "\(error)" }
        }
        XCTAssertTrue(message("mfa-\(p)").contains("MFA") && message("mfa-\(p)").contains("--token-code"), message("mfa-\(p)"))
        XCTAssertTrue(message("nosource-\(p)").contains("neither source_profile nor credential_source"), message("nosource-\(p)"))
        XCTAssertTrue(message("missing-\(p)").contains("source_profile 'nowhere-\(p)' is not in"), message("missing-\(p)"))
        XCTAssertTrue(message("loop-\(p)").contains("a loop?"), message("loop-\(p)"))
        let none = message("absent-\(p)")
        XCTAssertTrue(none.contains("no AWS credentials") && none.contains("'absent-\(p)'") && none.contains("sso_session"), none)
    }

    /// End to end: an SSO profile's credentials sign every Batch request (the contract server
    /// checks each signature with the keys the SSO portal gave) and stage through S3.
    func testARunOnAWSBatchWithAnSSOProfile() throws {
        let sso = try tokenServer(["--sso-token", "tok-e2e", "--access-key", "ASIASSOE2E", "--secret-key", "ssoe2esecret"])
        let batch = try AWSBatchContractTests.Server(["--access-key", "ASIASSOE2E", "--secret-key", "ssoe2esecret"])
        let (repo, _) = try AWSBatchContractTests.repo(batch, population: 20)
        let session = "e2e-\(unique())"
        let home = try Home(
            config: ssoConfig(profile: "research", session: session, region: "us-east-1"),
            extra: ["AWS_ENDPOINT_URL_SSO": "http://127.0.0.1:\(sso.port)", "AWS_PROFILE": "research"])
        defer { home.remove() }
        try "{\"accessToken\": \"tok-e2e\", \"expiresAt\": \"\(Clock.iso8601(Clock.now() + 3600))\"}"
            .write(toFile: ssoCacheFile(home, session: session), atomically: true, encoding: .utf8)
        var env = home.env
        // Whatever keys the test process has must not take precedence over the profile.
        for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] { env[k] = "" }
        let r = repro(["run", "sim.yaml", "--backend", "aws", "--no-fallback", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(parseJSON(r.out)["backend"]?.stringValue, "aws")
        XCTAssertFalse(batch.requests().isEmpty)
        XCTAssertEqual(sso.testList("requests").filter { $0["source"]?.stringValue == "sso" }.count, 1, "fetched once for the whole run")
        XCTAssertFalse(r.out.contains("ssoe2esecret") || r.err.contains("ssoe2esecret") || r.out.contains("tok-e2e"), "a secret was printed")
    }
}
