import Crypto
import Foundation
import ReproSupport

/// AWS credentials, from the SDKs' chain (AWSCredentialChain.swift). Resolved at each request
/// (temporary credentials expire mid-sweep; those fetched from a service are cached until
/// shortly before); never written to the store, a job script, a log or an error message.
package struct AWSCredentials: Sendable {
    var accessKeyId: String
    var secretAccessKey: String
    var sessionToken: String?
    /// When temporary credentials stop working (seconds since 1970); nil: not known to expire.
    package var expiration: Double?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Double? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }
}

/// Settings from the environment and `~/.aws/{credentials,config}`, named as the AWS SDKs name
/// them: credentials (see `credentials()`), `AWS_REGION` / `AWS_DEFAULT_REGION` / the
/// profile's region; `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`.
package struct AWSSettings: Sendable {
    package var environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    var profile: String { environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default" }
    var home: String { environment["HOME"] ?? "/" }

    package func region(configured: String?) -> String {
        if let r = configured, !r.isEmpty { return r }
        for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] { if let r = environment[name], !r.isEmpty { return r } }
        let file = environment["AWS_CONFIG_FILE"] ?? home + "/.aws/config"
        let sections = AWSSettings.ini(file)
        let section = profile == "default" ? sections["default"] : sections["profile " + profile]
        return section?["region"] ?? "us-east-1"
    }

    /// The S3 endpoint to use instead of AWS's: the config's, else the environment's.
    func s3Endpoint(configured: String?) -> String? {
        if let e = configured, !e.isEmpty { return e }
        for name in ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"] { if let e = environment[name], !e.isEmpty { return e } }
        return nil
    }

    /// An INI file as sections of key/value pairs (`[name]`, `key = value`, `#`/`;` comments).
    static func ini(_ path: String) -> [String: [String: String]] {
        guard let bytes = try? FileIO.readAll(path, limit: 1 << 20) else { return [:] }
        var out: [String: [String: String]] = [:]
        var current = ""
        for raw in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let k = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
            out[current, default: [:]][k] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
        return out
    }
}

/// AWS Signature Version 4 (the `AWS4-HMAC-SHA256` scheme), for headers and presigned URLs.
/// Checked against botocore's own signer in the tests.
package enum SigV4 {
    package struct Target: Sendable {
        package var method: String
        /// `host` or `host:port`, exactly as the Host header is sent.
        package var host: String
        /// The path, already URI-encoded (S3 keys: each segment encoded, `/` kept).
        package var path: String
        /// Decoded query parameters.
        package var query: [(name: String, value: String)]

        public init(method: String, host: String, path: String, query: [(name: String, value: String)] = []) {
            self.method = method
            self.host = host
            self.path = path
            self.query = query
        }
    }

    /// RFC 3986 unreserved characters stay; everything else is %XX (upper case).
    package static func encode(_ s: String, keepSlash: Bool = false) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            case UInt8(ascii: "/") where keepSlash: out.append("/")
            default: out += String(format: "%%%02X", b)
            }
        }
        return out
    }

    package static func canonicalQuery(_ q: [(name: String, value: String)]) -> String {
        let pairs: [(String, String)] = q.map { (encode($0.name), encode($0.value)) }
        let sorted = pairs.sorted { (a: (String, String), b: (String, String)) -> Bool in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        return sorted.map { (p: (String, String)) -> String in p.0 + "=" + p.1 }.joined(separator: "&")
    }

    static func amzDate(_ t: Double) -> String {
        var time = time_t(t)
        var tm = tm()
        gmtime_r(&time, &tm)
        return String(
            format: "%04d%02d%02dT%02d%02d%02dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday), Int(tm.tm_hour),
            Int(tm.tm_min), Int(tm.tm_sec))
    }

    static func signingKey(secret: String, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + secret).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    static func signature(
        _ t: Target, headers: [(name: String, value: String)], payloadHash: String, credentials: AWSCredentials, region: String,
        service: String, amzDate: String
    ) -> (signature: String, signedHeaders: String) {
        var canon: [String: String] = [:]
        for (n, v) in headers {
            let value = v.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            let name = n.lowercased()
            canon[name] = canon[name].map { $0 + "," + value } ?? value
        }
        let names = canon.keys.sorted()
        let signedHeaders = names.joined(separator: ";")
        let canonicalRequest = [
            t.method, t.path.isEmpty ? "/" : t.path, canonicalQuery(t.query),
            names.map { "\($0):\(canon[$0] ?? "")\n" }.joined(), signedHeaders, payloadHash,
        ].joined(separator: "\n")
        let day = String(amzDate.prefix(8))
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = ["AWS4-HMAC-SHA256", amzDate, scope, Hashing.sha256Hex(canonicalRequest)].joined(separator: "\n")
        let key = signingKey(secret: credentials.secretAccessKey, day: day, region: region, service: service)
        return (Hashing.hex(HMAC<SHA256>.authenticationCode(for: Array(toSign.utf8), using: key)), signedHeaders)
    }

    /// The headers to add to a request: X-Amz-Date, X-Amz-Content-Sha256 (for S3),
    /// X-Amz-Security-Token (temporary credentials) and Authorization. `headers` are the other
    /// headers that will be sent and signed (Host among them).
    package static func sign(
        _ t: Target, headers: [(name: String, value: String)], payloadHash: String, credentials: AWSCredentials, region: String,
        service: String, now: Double, contentSha256Header: Bool = true
    ) -> [(name: String, value: String)] {
        let date = amzDate(now)
        var added: [(name: String, value: String)] = [("X-Amz-Date", date)]
        if contentSha256Header { added.append(("X-Amz-Content-Sha256", payloadHash)) }
        if let token = credentials.sessionToken { added.append(("X-Amz-Security-Token", token)) }
        let (sig, signed) = signature(
            t, headers: headers + added, payloadHash: payloadHash, credentials: credentials, region: region, service: service, amzDate: date)
        let day = String(date.prefix(8))
        added.append((
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(day)/\(region)/\(service)/aws4_request, "
                + "SignedHeaders=\(signed), Signature=\(sig)"
        ))
        return added
    }

    /// The query string of a presigned URL (only the Host header is signed; the payload is not).
    static func presignedQuery(
        _ t: Target, credentials: AWSCredentials, region: String, service: String, now: Double, expires: Int
    ) -> String {
        let date = amzDate(now)
        let day = String(date.prefix(8))
        var q = t.query
        q.append(("X-Amz-Algorithm", "AWS4-HMAC-SHA256"))
        q.append(("X-Amz-Credential", "\(credentials.accessKeyId)/\(day)/\(region)/\(service)/aws4_request"))
        q.append(("X-Amz-Date", date))
        q.append(("X-Amz-Expires", String(expires)))
        if let token = credentials.sessionToken { q.append(("X-Amz-Security-Token", token)) }
        q.append(("X-Amz-SignedHeaders", "host"))
        var signedTarget = t
        signedTarget.query = q
        let (sig, _) = signature(
            signedTarget, headers: [("host", t.host)], payloadHash: "UNSIGNED-PAYLOAD", credentials: credentials, region: region,
            service: service, amzDate: date)
        return canonicalQuery(q) + "&X-Amz-Signature=" + sig
    }
}
