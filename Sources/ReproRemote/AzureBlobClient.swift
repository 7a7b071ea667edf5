import Crypto
import Foundation
import ReproSupport

/// Azure Storage credentials, from the environment at each request: `AZURE_STORAGE_ACCOUNT`
/// with `AZURE_STORAGE_KEY` (Shared Key: signs requests and makes per-blob SAS URLs for
/// workers) or `AZURE_STORAGE_SAS_TOKEN` (a container SAS, used as it is).
struct AzureStorageCredentials: Sendable {
    package var account: String
    /// The decoded account key.
    package var key: [UInt8]?
    var sasToken: String?

    static func read(_ env: [String: String], account configured: String) throws(RemoteError) -> AzureStorageCredentials {
        let account = env["AZURE_STORAGE_ACCOUNT"].flatMap { $0.isEmpty ? nil : $0 } ?? configured
        if let k = env["AZURE_STORAGE_KEY"], !k.isEmpty {
            guard let data = Data(base64Encoded: k) else {
                throw RemoteError("AZURE_STORAGE_KEY is not base64 (copy an access key of storage account \(account) from the portal)", kind: .auth)
            }
            return AzureStorageCredentials(account: account, key: Array(data), sasToken: nil)
        }
        if let s = env["AZURE_STORAGE_SAS_TOKEN"], !s.isEmpty {
            return AzureStorageCredentials(account: account, key: nil, sasToken: s.hasPrefix("?") ? String(s.dropFirst()) : s)
        }
        throw RemoteError(
            "no Azure Storage credentials for account \(account): set AZURE_STORAGE_KEY (an access key) or AZURE_STORAGE_SAS_TOKEN (a container SAS)",
            kind: .auth)
    }
}

/// Shared Key signing, as Azure Storage and Azure Batch document it (HMAC-SHA256 over the
/// string-to-sign, base64). Storage signs `x-ms-*` headers, Batch `ocp-*` ones.
package enum AzureSharedKey {
    package static func sign(_ text: String, key: [UInt8]) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: SymmetricKey(data: key))).base64EncodedString()
    }

    /// The string-to-sign for a request: verb, the standard headers (Content-Length empty when
    /// 0), the canonicalized `prefix` headers, and the canonicalized resource (`/ACCOUNT/PATH`,
    /// then each query parameter `\nname:value`, names lower-cased and sorted).
    package static func stringToSign(
        method: String, headers: [(name: String, value: String)], headerPrefix: String, account: String, path: String,
        query: [(name: String, value: String)]
    ) -> String {
        func h(_ n: String) -> String { headers.last { $0.name.lowercased() == n.lowercased() }?.value ?? "" }
        let length = h("Content-Length") == "0" ? "" : h("Content-Length")
        var lines = [method, h("Content-Encoding"), h("Content-Language"), length, h("Content-MD5"), h("Content-Type"), h("Date"),
            h("If-Modified-Since"), h("If-Match"), h("If-None-Match"), h("If-Unmodified-Since"), h("Range")]
        var canon: [String: String] = [:]
        for (n, v) in headers where n.lowercased().hasPrefix(headerPrefix) {
            canon[n.lowercased()] = v.trimmingCharacters(in: .whitespaces)
        }
        let canonHeaders = canon.keys.sorted().map { "\($0):\(canon[$0] ?? "")\n" }.joined()
        var resource = "/" + account + path
        var params: [String: [String]] = [:]
        for (n, v) in query { params[n.lowercased(), default: []].append(v) }
        for n in params.keys.sorted() { resource += "\n\(n):\((params[n] ?? []).sorted().joined(separator: ","))" }
        lines.append(canonHeaders + resource)
        return lines.joined(separator: "\n")
    }

    /// RFC 1123, as x-ms-date and ocp-date want it.
    package static func httpDate(_ t: Double) -> String {
        var time = time_t(t)
        var tmv = tm()
        gmtime_r(&time, &tmv)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return String(
            format: "%@, %02d %@ %04d %02d:%02d:%02d GMT", days[Int(tmv.tm_wday)], Int(tmv.tm_mday), months[Int(tmv.tm_mon)],
            Int(tmv.tm_year) + 1900, Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
    }

    /// Percent-encodes a path (each segment; `/` kept).
    static func encodePath(_ s: String) -> String { SigV4.encode(s, keepSlash: true) }
}

/// Azure Blob Storage over REST (no SDK): Put Blob (Put Block / Put Block List for large
/// files), Get Blob, Get Blob Properties, Delete Blob, List Blobs, and service SAS URLs for
/// workers. Staging uses the same content-addressed layout as on S3; `bucket` is a container.
package final class AzureBlobClient: ObjectTransport {
    package static let version = "2021-08-06"
    let account: String
    /// `scheme://host[:port]` and a base path (`/ACCOUNT` for an emulator, else empty).
    let scheme: String
    let host: String
    let basePath: String
    let environment: [String: String]
    let http = HTTPClient()
    package let retry: RetryPolicy
    /// Files larger than this go up as blocks of `blockSize`.
    let blockThreshold: Int64
    let blockSize: Int64
    let clock: @Sendable () -> Double

    public init(
        account: String, endpoint: String? = nil, environment: [String: String], retry: RetryPolicy = RetryPolicy(),
        blockThreshold: Int64 = 64 << 20, blockSize: Int64 = 16 << 20, clock: @escaping @Sendable () -> Double = { Clock.now() }
    ) throws(ConfigError) {
        let e = endpoint ?? environment["AZURE_STORAGE_BLOB_ENDPOINT"] ?? "https://\(account).blob.core.windows.net"
        guard let u = URLComponents(string: e), let scheme = u.scheme, scheme == "http" || scheme == "https", let host = u.host else {
            throw ConfigError("the Blob endpoint '\(e)' is not a URL such as https://ACCOUNT.blob.core.windows.net")
        }
        self.account = account
        self.scheme = scheme
        self.host = host + (u.port.map { ":\($0)" } ?? "")
        basePath = u.path.hasSuffix("/") ? String(u.path.dropLast()) : u.path
        self.environment = environment
        self.retry = retry
        self.blockThreshold = blockThreshold
        self.blockSize = max(1 << 20, blockSize)
        self.clock = clock
    }

    func credentials() throws(RemoteError) -> AzureStorageCredentials { try AzureStorageCredentials.read(environment, account: account) }

    func path(_ container: String, _ blob: String) -> String {
        basePath + "/" + container + (blob.isEmpty ? "" : "/" + AzureSharedKey.encodePath(blob))
    }

    package func send(_ c: ObjectCall) throws(RemoteError) -> HTTPResponse {
        try retry.run { (_: Int) throws(RemoteError) -> HTTPResponse in
            let creds = try credentials()
            let p = path(c.bucket, c.key)
            var headers = c.headers
            headers.append(("x-ms-version", AzureBlobClient.version))
            headers.append(("x-ms-date", AzureSharedKey.httpDate(clock())))
            let length = c.bodyFile?.length ?? Int64(c.body.count)
            if c.method == "PUT" || c.method == "POST" { headers.append(("Content-Length", String(length))) }
            var query = c.query
            if let key = creds.key {
                let sts = AzureSharedKey.stringToSign(
                    method: c.method, headers: headers, headerPrefix: "x-ms-", account: creds.account, path: p, query: query)
                headers.append(("Authorization", "SharedKey \(creds.account):\(AzureSharedKey.sign(sts, key: key))"))
            } else if let sas = creds.sasToken {
                for pair in sas.split(separator: "&") {
                    let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                    query.append((kv[0].removingPercentEncoding ?? kv[0], kv.count > 1 ? (kv[1].removingPercentEncoding ?? kv[1]) : ""))
                }
            }
            let base = "\(scheme)://\(host)\(p)"
            return try c.perform(with: http, base: base, query: query, headers: headers) { AzureBlobClient.error($0, what: "\(c.method) \(base)") }
        }
    }

    /// Azure's XML error documents (`<Error><Code>`), with what to do for the common ones.
    static func error(_ r: HTTPResponse, what: String) -> RemoteError {
        classify(r, what: what).retrying(after: r.headers)
    }

    private static func classify(_ r: HTTPResponse, what: String) -> RemoteError {
        let code = XMLText.first("Code", in: r.text) ?? r.headers["x-ms-error-code"] ?? ""
        let message = XMLText.first("Message", in: r.text).map { $0.split(separator: "\n").first.map(String.init) ?? $0 } ?? ""
        let said = "\(what): HTTP \(r.status)\(code.isEmpty ? "" : " \(code)")\(message.isEmpty ? "" : ": \(message)")"
        switch r.status {
        case 401, 403:
            return RemoteError(said + " (the storage key or SAS is wrong or expired: check AZURE_STORAGE_KEY / AZURE_STORAGE_SAS_TOKEN)", kind: .auth, httpStatus: r.status)
        case 404: return RemoteError(said, kind: .notFound, httpStatus: 404)
        case 409, 412: return RemoteError(said, kind: .precondition, httpStatus: r.status)
        case 429, 503: return RemoteError(said, kind: .throttled, httpStatus: r.status)
        case 500...: return RemoteError(said, kind: .server, httpStatus: r.status)
        default: return RemoteError(said, kind: .client, httpStatus: r.status)
        }
    }

    // MARK: ObjectStore

    package var putHeaders: [(name: String, value: String)] { [("x-ms-blob-type", "BlockBlob"), ("Content-Type", "application/octet-stream")] }
    /// Blob storage answers 409 BlobAlreadyExists, or 412 under some conditions.
    package var keyTakenStatuses: Set<Int> { [409, 412] }

    @discardableResult
    package func upload(file path: String, bucket: String, key: String, ifNoneMatch: Bool = false) throws(RemoteError) -> Bool {
        let size = try Self.fileSize(path)
        if size <= blockThreshold {
            return try putObject(ObjectCall(method: "PUT", bucket: bucket, key: key, bodyFile: (path, 0, size)), ifNoneMatch: ifNoneMatch)
        }
        // Put Block for each piece, then Put Block List commits them in order.
        let count = Int((size + blockSize - 1) / blockSize)
        let ids = (0..<count).map { Data(String(format: "repro-block-%08d", $0).utf8).base64EncodedString() }
        let blockSize = blockSize
        try Parallel.forEach(count, width: 4) { (i: Int) throws(RemoteError) in
            let offset = Int64(i) * blockSize
            _ = try self.send(
                ObjectCall(method: "PUT", bucket: bucket, key: key, query: [("comp", "block"), ("blockid", ids[i])],
                    bodyFile: (path, offset, min(blockSize, size - offset))))
        }
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>" + ids.map { "<Latest>\($0)</Latest>" }.joined() + "</BlockList>"
        let commit = ObjectCall(
            method: "PUT", bucket: bucket, key: key, query: [("comp", "blocklist")], headers: [("Content-Type", "application/xml")], body: Array(xml.utf8))
        return try putObject(commit, ifNoneMatch: ifNoneMatch, objectHeaders: false)
    }

    package func list(bucket: String, prefix: String, pageSize: Int = 1000) throws(RemoteError) -> [S3Object] {
        try listPages(
            bucket: bucket, prefix: prefix, scheme: "az",
            query: { marker in
                [("restype", "container"), ("comp", "list"), ("prefix", prefix), ("maxresults", String(pageSize))]
                    + (marker.map { [("marker", $0)] } ?? [])
            },
            read: { page in
                let objects = page.all("Blob").compactMap { item -> S3Object? in
                    guard let name = item.text(of: "Name") else { return nil }
                    return S3Object(
                        key: name, size: Int64(item.text(of: "Content-Length") ?? "") ?? 0, etag: item.text(of: "Etag"),
                        lastModified: item.text(of: "Last-Modified"))
                }
                // Blob storage has no truncation flag: a NextMarker is the only sign of more.
                return (objects, page.text(of: "NextMarker"), false)
            })
    }

    /// Creates a container (tests and first-time setup; an existing one is fine).
    package func createContainer(_ name: String) throws(RemoteError) {
        _ = try send(ObjectCall(method: "PUT", bucket: name, key: "", query: [("restype", "container")], accept: [409]))
    }

    /// A service SAS for one blob: read for GET, create and write for PUT. With only a
    /// container SAS, that token is handed on as it is (broader: say so in the docs).
    package func presign(_ method: String, bucket: String, key: String, expires: Int) throws(RemoteError) -> String {
        let creds = try credentials()
        let url = "\(scheme)://\(host)\(path(bucket, key))"
        guard let accountKey = creds.key else { return url + "?" + (creds.sasToken ?? "") }
        let permissions = method == "PUT" ? "cw" : "r"
        let expiry = AzureBlobClient.sasTime(clock() + Double(max(1, expires)))
        let fields = AzureBlobClient.sasFields(
            permissions: permissions, expiry: expiry, account: creds.account, container: bucket, blob: key)
        let sig = AzureSharedKey.sign(fields, key: accountKey)
        let q: [(String, String)] = [("sv", AzureBlobClient.version), ("sp", permissions), ("se", expiry), ("sr", "b"), ("sig", sig)]
        return url + "?" + q.map { "\($0.0)=\(SigV4.encode($0.1))" }.joined(separator: "&")
    }

    /// The service SAS string-to-sign (version 2020-12-06 and later): permissions, start,
    /// expiry, `/blob/ACCOUNT/CONTAINER/BLOB`, identifier, IP, protocol, version, resource `b`,
    /// snapshot time, encryption scope, then the five response-header overrides.
    static func sasFields(permissions: String, expiry: String, account: String, container: String, blob: String) -> String {
        [permissions, "", expiry, "/blob/\(account)/\(container)/\(blob)", "", "", "", version, "b", "", "", "", "", "", "", ""]
            .joined(separator: "\n")
    }

    static func sasTime(_ t: Double) -> String {
        String(Clock.iso8601(t).prefix(19)) + "Z"
    }

    package func checkCredentials() throws(RemoteError) {
        _ = try credentials()
    }
}
