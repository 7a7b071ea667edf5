import Crypto
import Foundation
import ReproSupport
import Synchronization

/// The AWS SDKs' credential chain, in botocore's order: the environment's keys; the profile
/// (`AWS_PROFILE`, else `default`, from `~/.aws/config` and `~/.aws/credentials`) with
/// `role_arn` + `source_profile`/`credential_source` (STS AssumeRole), web identity
/// (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, or the profile's
/// `web_identity_token_file`), SSO (the token `aws sso login` caches, exchanged at the portal's
/// GetRoleCredentials), static keys, `credential_process`; then the container's credentials
/// (ECS, AWS Batch: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`/`FULL_URI`) and the instance's
/// (IMDSv2). Temporary credentials are cached per source for the process and fetched again
/// five minutes before they expire.
extension AWSSettings {
    /// Credentials fetched from a service, by source, until shortly before they expire.
    static let cache = Mutex<[String: AWSCredentials]>([:])
    /// Fetched again this long before they expire (the SDKs refresh 10-15 min ahead; a
    /// request signed now must not land after the expiry).
    static let refreshAhead = 300.0

    package func credentials() throws(RemoteError) -> AWSCredentials {
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty, let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty {
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: token)
        }
        let p = AWSProfile(name: profile, settings: self)
        if let c = try p.credentials(depth: 0) { return c }
        if let file = nonEmpty("AWS_WEB_IDENTITY_TOKEN_FILE"), let role = nonEmpty("AWS_ROLE_ARN") {
            return try webIdentity(tokenFile: file, roleArn: role, sessionName: nonEmpty("AWS_ROLE_SESSION_NAME"), profile: nil)
        }
        if let c = try containerCredentials() { return c }
        if let c = try instanceCredentials() { return c }
        throw RemoteError(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or configure the profile '\(profile)' in \(p.configFile) "
                + "or \(p.credentialsFile) (keys, role_arn with source_profile, sso_session, credential_process; AWS_PROFILE picks "
                + "another), or run where a container or instance role gives them", kind: .auth)
    }

    func nonEmpty(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }

    /// The cached credentials for `source` while they last, else `fetch`'s (then cached).
    /// A failed refresh falls back on cached credentials that have not expired yet.
    func cached(_ source: String, _ fetch: () throws(RemoteError) -> AWSCredentials) throws(RemoteError) -> AWSCredentials {
        let now = Clock.now()
        let old = AWSSettings.cache.withLock { $0[source] }
        if let old, let exp = old.expiration, exp - now > AWSSettings.refreshAhead { return old }
        do {
            let fresh = try fetch()
            AWSSettings.cache.withLock { $0[source] = fresh }
            return fresh
        } catch {
            if let old, let exp = old.expiration, exp > now + 30 { return old }
            throw error
        }
    }

    // MARK: - STS

    /// The STS endpoint: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, the profile's
    /// `endpoint_url`, else the regional one.
    func stsEndpoint(_ p: AWSProfile?) -> String {
        (nonEmpty("AWS_ENDPOINT_URL_STS") ?? nonEmpty("AWS_ENDPOINT_URL") ?? p?.value("endpoint_url"))
            ?? "https://sts.\(p?.value("region") ?? region(configured: nil)).amazonaws.com"
    }

    /// One STS query-API call (a form POST); signed with `signer` unless nil (web identity).
    func sts(_ params: [(String, String)], signer: AWSCredentials?, profile p: AWSProfile?, what: String) throws(RemoteError) -> AWSCredentials {
        let endpoint = stsEndpoint(p)
        guard let u = URLComponents(string: endpoint), let host = u.host else {
            throw RemoteError("the STS endpoint '\(endpoint)' is not a URL", kind: .client)
        }
        let scheme = u.scheme ?? "https"
        let hostHeader = host + (u.port.map { $0 == (scheme == "https" ? 443 : 80) ? "" : ":\($0)" } ?? "")
        let body = Array((params + [("Version", "2011-06-15")]).map { SigV4.encode($0.0) + "=" + SigV4.encode($0.1) }.joined(separator: "&").utf8)
        var headers: [(name: String, value: String)] = [("Host", hostHeader), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
        if let signer {
            let region = p?.value("region") ?? self.region(configured: nil)
            headers += SigV4.sign(
                SigV4.Target(method: "POST", host: hostHeader, path: "/"), headers: headers, payloadHash: Hashing.sha256Hex(body),
                credentials: signer, region: region, service: "sts", now: Clock.now(), contentSha256Header: false)
        }
        var req = HTTPRequest(method: "POST", url: "\(scheme)://\(hostHeader)/", headers: headers, body: body)
        req.timeout = 30
        let r = try RetryPolicy().run { (_: Int) throws(RemoteError) -> HTTPResponse in
            let r = try HTTPClient.shared.perform(req)
            if r.status >= 500 || r.status == 429 {
                throw RemoteError("\(what): STS answered HTTP \(r.status)", kind: r.status == 429 ? .throttled : .server, httpStatus: r.status)
            }
            return r
        }
        guard r.status == 200, let id = XMLText.first("AccessKeyId", in: r.text), let secret = XMLText.first("SecretAccessKey", in: r.text),
            let token = XMLText.first("SessionToken", in: r.text)
        else {
            let code = XMLText.first("Code", in: r.text) ?? "HTTP \(r.status)"
            let message = XMLText.first("Message", in: r.text) ?? String(r.text.prefix(200))
            throw RemoteError("\(what): STS refused (\(code): \(message))", kind: r.status == 400 || r.status == 403 ? .auth : .client, httpStatus: r.status)
        }
        return AWSCredentials(
            accessKeyId: id, secretAccessKey: secret, sessionToken: token,
            expiration: XMLText.first("Expiration", in: r.text).flatMap(Clock.parseISO8601))
    }

    func assumeRole(_ p: AWSProfile, roleArn: String, source: AWSCredentials) throws(RemoteError) -> AWSCredentials {
        var params = [("Action", "AssumeRole"), ("RoleArn", roleArn), ("RoleSessionName", p.value("role_session_name") ?? "repro-\(Int(Clock.now()))")]
        if let d = p.value("duration_seconds") { params.append(("DurationSeconds", d)) }
        if let e = p.value("external_id") { params.append(("ExternalId", e)) }
        return try cached("role:\(p.name):\(roleArn):\(source.accessKeyId)") { () throws(RemoteError) -> AWSCredentials in
            do throws(RemoteError) {
                return try sts(params, signer: source, profile: p, what: "assuming \(roleArn) for profile '\(p.name)'")
            } catch {
                throw error.with(message: error.message + " (check role_arn and source_profile in profile '\(p.name)', and that the source may sts:AssumeRole it)")
            }
        }
    }

    func webIdentity(tokenFile: String, roleArn: String, sessionName: String?, profile p: AWSProfile?) throws(RemoteError) -> AWSCredentials {
        try cached("web:\(roleArn):\(tokenFile)") { () throws(RemoteError) -> AWSCredentials in
            // Read at each fetch: the token file is rotated (EKS, GitHub Actions).
            guard let bytes = try? FileIO.readAll(tokenFile, limit: 1 << 20) else {
                throw RemoteError("cannot read the web identity token \(tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE / web_identity_token_file)", kind: .auth)
            }
            let token = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return try sts(
                [("Action", "AssumeRoleWithWebIdentity"), ("RoleArn", roleArn), ("RoleSessionName", sessionName ?? "repro-\(Int(Clock.now()))"),
                 ("WebIdentityToken", token)],
                signer: nil, profile: p, what: "assuming \(roleArn) with the web identity token \(tokenFile)")
        }
    }

    // MARK: - Container and instance

    /// ECS and AWS Batch containers: a local endpoint the agent serves, with an authorization
    /// token when `FULL_URI` is used.
    func containerCredentials() throws(RemoteError) -> AWSCredentials? {
        let url: String
        if let rel = nonEmpty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            url = "http://169.254.170.2" + rel
        } else if let full = nonEmpty("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            url = full
        } else {
            return nil
        }
        var auth = nonEmpty("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        if let f = nonEmpty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            guard let b = try? FileIO.readAll(f, limit: 1 << 16) else {
                throw RemoteError("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(f)", kind: .auth)
            }
            auth = String(decoding: b, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return try cached("container:\(url)") { () throws(RemoteError) -> AWSCredentials in
            var req = HTTPRequest(method: "GET", url: url, headers: auth.map { [("Authorization", $0)] } ?? [], body: [])
            req.timeout = 5
            let r = try RetryPolicy(attempts: 3).run { (_: Int) throws(RemoteError) -> HTTPResponse in try HTTPClient.shared.perform(req) }
            return try AWSSettings.jsonCredentials(r, what: "the container credentials endpoint \(HTTPClient.redacted(url))")
        }
    }

    /// IMDSv2: a session token by PUT, then the role's credentials. One quick try (as the
    /// SDKs): off EC2 nothing answers, and the chain's end must not hang a laptop.
    func instanceCredentials() throws(RemoteError) -> AWSCredentials? {
        if nonEmpty("AWS_EC2_METADATA_DISABLED")?.lowercased() == "true" { return nil }
        var base = nonEmpty("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254"
        if base.hasSuffix("/") { base.removeLast() }
        return try cached("imds:\(base)") { () throws(RemoteError) -> AWSCredentials in
            var put = HTTPRequest(method: "PUT", url: base + "/latest/api/token", headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")], body: [])
            put.timeout = 1
            let none = RemoteError("no AWS credentials", kind: .auth)
            guard let t = try? HTTPClient.shared.perform(put), t.status == 200 else { throw none }
            let token = t.text.trimmingCharacters(in: .whitespacesAndNewlines)
            func get(_ path: String) throws(RemoteError) -> HTTPResponse {
                var req = HTTPRequest(method: "GET", url: base + path, headers: [("X-aws-ec2-metadata-token", token)], body: [])
                req.timeout = 2
                return try HTTPClient.shared.perform(req)
            }
            let roles = try get("/latest/meta-data/iam/security-credentials/")
            guard roles.status == 200, let role = roles.text.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
                throw RemoteError("the instance metadata service answers but this instance has no IAM role (attach an instance profile)", kind: .auth)
            }
            return try AWSSettings.jsonCredentials(get("/latest/meta-data/iam/security-credentials/" + role), what: "the instance metadata service")
        }
    }

    /// The JSON the container and instance endpoints (and credential_process) answer:
    /// AccessKeyId, SecretAccessKey, Token or SessionToken, Expiration.
    static func jsonCredentials(_ r: HTTPResponse, what: String) throws(RemoteError) -> AWSCredentials {
        guard r.status == 200 else {
            throw RemoteError("\(what) answered HTTP \(r.status)", kind: r.status == 401 || r.status == 403 ? .auth : .server, httpStatus: r.status)
        }
        guard let c = jsonCredentials(r.body) else { throw RemoteError("\(what) answered without AccessKeyId and SecretAccessKey", kind: .server) }
        return c
    }

    static func jsonCredentials(_ body: [UInt8]) -> AWSCredentials? {
        guard let j = try? JSONParser.parse(body), let id = j["AccessKeyId"]?.stringValue, let secret = j["SecretAccessKey"]?.stringValue else { return nil }
        return AWSCredentials(
            accessKeyId: id, secretAccessKey: secret, sessionToken: j["SessionToken"]?.stringValue ?? j["Token"]?.stringValue,
            expiration: j["Expiration"]?.stringValue.flatMap(Clock.parseISO8601))
    }
}
