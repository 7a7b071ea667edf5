import Crypto
import Foundation
import Synchronization

/// `s3://bucket/prefix`: where a backend stages tasks or a team keeps its cache.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public var bucket: String
    /// No leading or trailing slash; may be empty.
    public var prefix: String
    /// `s3`, or `az` for an Azure Blob container.
    public var scheme = "s3"

    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/").joined(separator: "/")
    }

    public init(parsing text: String, what: String) throws(ConfigError) {
        guard text.hasPrefix("s3://") else {
            throw ConfigError("\(what) '\(text)' is not an s3:// URL; write it like s3://my-bucket/repro/staging")
        }
        let rest = text.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        guard bucket.count >= 3, bucket.count <= 63,
            bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") })
        else {
            throw ConfigError(
                "\(what) '\(text)': '\(bucket)' is not a valid bucket name (3 to 63 lower-case letters, digits, '-' or '.')")
        }
        self.init(bucket: bucket, prefix: String(rest.dropFirst(bucket.count)))
    }

    public func key(_ rel: String) -> String { prefix.isEmpty ? rel : prefix + "/" + rel }
    /// The inverse of `key`: an object key relative to the prefix.
    public func relative(_ key: String) -> String { prefix.isEmpty ? key : String(key.dropFirst(prefix.count + 1)) }
    public var description: String { "\(scheme)://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }
}

/// What `ObjectStore.getCapped` found.
public enum CappedObject: Sendable {
    case missing, tooLarge
    case bytes([UInt8])
}

/// Object storage as staging uses it: S3 (`S3Client`) and Azure Blob Storage (`AzureBlobClient`).
/// `bucket` is an S3 bucket or a Blob container; `presign` makes a URL its holder can GET or PUT
/// with no credentials of their own (an S3 presigned URL, an Azure SAS).
public protocol ObjectStore: Sendable {
    @discardableResult
    func put(_ bytes: [UInt8], bucket: String, key: String, ifNoneMatch: Bool) throws(RemoteError) -> Bool
    @discardableResult
    func upload(file path: String, bucket: String, key: String, ifNoneMatch: Bool) throws(RemoteError) -> Bool
    func get(bucket: String, key: String) throws(RemoteError) -> [UInt8]
    /// The object's bytes (nil when there is none), refusing more than `maxBytes`.
    func getIfPresent(bucket: String, key: String, maxBytes: Int64) throws(RemoteError) -> [UInt8]?
    /// Downloads into a file, stopping (and removing it) past `maxBytes`.
    func downloadIfPresent(bucket: String, key: String, to path: String, maxBytes: Int64) throws(RemoteError) -> Bool
    func head(bucket: String, key: String) throws(RemoteError) -> S3Object?
    func delete(bucket: String, key: String) throws(RemoteError)
    func list(bucket: String, prefix: String, pageSize: Int) throws(RemoteError) -> [S3Object]
    func presign(_ method: String, bucket: String, key: String, expires: Int) throws(RemoteError) -> String
    /// Checks credentials are there (before anything is recorded).
    func checkCredentials() throws(RemoteError)
}

extension ObjectStore {
    @discardableResult
    func put(_ bytes: [UInt8], bucket: String, key: String) throws(RemoteError) -> Bool {
        try put(bytes, bucket: bucket, key: key, ifNoneMatch: false)
    }
    @discardableResult
    func upload(file path: String, bucket: String, key: String) throws(RemoteError) -> Bool {
        try upload(file: path, bucket: bucket, key: key, ifNoneMatch: false)
    }
    func list(bucket: String, prefix: String) throws(RemoteError) -> [S3Object] {
        try list(bucket: bucket, prefix: prefix, pageSize: 1000)
    }
    func getIfPresent(bucket: String, key: String) throws(RemoteError) -> [UInt8]? {
        try getIfPresent(bucket: bucket, key: key, maxBytes: HTTPRequest.inMemoryLimit)
    }
    func downloadIfPresent(bucket: String, key: String, to path: String) throws(RemoteError) -> Bool {
        try downloadIfPresent(bucket: bucket, key: key, to: path, maxBytes: Int64.max)
    }

    /// An object that may be at most `maxBytes` (a manifest): a larger one is `.tooLarge`, a
    /// finding about that object, not an error of the command reading it.
    func getCapped(bucket: String, key: String, maxBytes: Int64) throws(RemoteError) -> CappedObject {
        do {
            return try getIfPresent(bucket: bucket, key: key, maxBytes: maxBytes).map(CappedObject.bytes) ?? .missing
        } catch {
            guard error.kind == .integrity else { throw error }
            return .tooLarge
        }
    }

    /// Checks the location can be written, read and deleted (for `repro backends`).
    public func probe(_ loc: S3Location) throws(RemoteError) {
        let key = loc.key("probe/\(HostInfo.newRunId())")
        try put(Array("repro probe\n".utf8), bucket: loc.bucket, key: key)
        _ = try get(bucket: loc.bucket, key: key)
        try delete(bucket: loc.bucket, key: key)
    }
}

/// An object's metadata (HEAD, list).
public struct S3Object: Sendable {
    public var key: String
    public var size: Int64
    public var etag: String?
    public var lastModified: String?
}

/// An S3 client over libcurl with Signature V4: works with AWS and with any S3-compatible
/// service (`endpoint:` in config or `AWS_ENDPOINT_URL_S3`, path-style addressing). Transient
/// failures (5xx, 429, timeouts, refused connections) are retried with backoff.
public final class S3Client: ObjectStore {
    public let settings: AWSSettings
    public let region: String
    /// `scheme://host[:port]` of a custom endpoint; nil for AWS itself.
    let endpoint: (scheme: String, host: String)?
    let http: HTTPClient
    public let retry: RetryPolicy
    /// Files larger than this go up in parts of `partSize` (S3 allows at most 10,000 parts).
    public let multipartThreshold: Int64
    public let partSize: Int64
    /// Parts in flight at once.
    public let partConcurrency: Int
    /// Seconds since the epoch, for signing (tests move it).
    let clock: @Sendable () -> Double

    public init(
        settings: AWSSettings, region: String? = nil, endpoint: String? = nil, retry: RetryPolicy = RetryPolicy(),
        multipartThreshold: Int64 = 64 << 20, partSize: Int64 = 16 << 20, partConcurrency: Int = 4,
        clock: @escaping @Sendable () -> Double = { Clock.now() }
    ) throws(ConfigError) {
        self.settings = settings
        self.region = settings.region(configured: region)
        if let e = settings.s3Endpoint(configured: endpoint) {
            guard let u = URLComponents(string: e), let scheme = u.scheme, scheme == "http" || scheme == "https", let host = u.host,
                !host.isEmpty
            else { throw ConfigError("the S3 endpoint '\(e)' is not a URL such as http://127.0.0.1:5000 or https://s3.example.org") }
            let defaultPort = scheme == "https" ? 443 : 80
            self.endpoint = (scheme, host + (u.port.map { $0 == defaultPort ? "" : ":\($0)" } ?? ""))
        } else {
            self.endpoint = nil
        }
        http = HTTPClient()
        self.retry = retry
        self.multipartThreshold = multipartThreshold
        self.partSize = max(5 << 20, partSize)
        self.partConcurrency = max(1, partConcurrency)
        self.clock = clock
    }

    /// Where a request goes: scheme, Host header and the encoded path.
    func target(_ bucket: String, _ key: String) -> (scheme: String, host: String, path: String) {
        let encodedKey = key.isEmpty ? "" : "/" + SigV4.encode(key, keepSlash: true)
        if let e = endpoint { return (e.scheme, e.host, "/" + bucket + encodedKey) }
        // Virtual-hosted style, unless the bucket name has dots (TLS names would not match).
        if bucket.contains(".") { return ("https", "s3.\(region).amazonaws.com", "/" + bucket + encodedKey) }
        return ("https", "\(bucket).s3.\(region).amazonaws.com", encodedKey.isEmpty ? "/" : encodedKey)
    }

    struct Call {
        var method: String
        var bucket: String
        var key: String
        var query: [(name: String, value: String)] = []
        var headers: [(name: String, value: String)] = []
        var body: [UInt8] = []
        var bodyFile: (path: String, offset: Int64, length: Int64)? = nil
        var downloadTo: String? = nil
        /// The most body bytes accepted (see `HTTPRequest.maxBytes`).
        var maxBytes: Int64 = HTTPRequest.inMemoryLimit
        /// Statuses the caller handles itself (404 for HEAD, 412 for conditional writes).
        var accept: Set<Int> = []
    }

    /// Signs and sends one call, retrying transient failures; credentials are read per attempt.
    func send(_ c: Call) throws(RemoteError) -> HTTPResponse {
        let payloadHash: String
        if let f = c.bodyFile {
            payloadHash = try S3Client.sha256(of: f)
        } else {
            payloadHash = Hashing.sha256Hex(c.body)
        }
        return try retry.run { (_: Int) throws(RemoteError) -> HTTPResponse in
            let creds = try settings.credentials()
            let (scheme, host, path) = target(c.bucket, c.key)
            // A session token travels in a header: never in the clear to another machine.
            if creds.sessionToken != nil, Redact.isPlainRemoteHTTP("\(scheme)://\(host)") {
                throw RemoteError(
                    "the S3 endpoint http://\(host) is plain http to another machine and the credentials carry a session token; use https://",
                    kind: .auth)
            }
            var headers = c.headers
            headers.append(("Host", host))
            if c.method == "PUT" || c.method == "POST" { headers.append(("Content-Type", "application/octet-stream")) }
            let t = SigV4.Target(method: c.method, host: host, path: path, query: c.query)
            headers += SigV4.sign(t, headers: headers, payloadHash: payloadHash, credentials: creds, region: region, service: "s3", now: clock())
            let q = SigV4.canonicalQuery(c.query)
            var req = HTTPRequest(method: c.method, url: "\(scheme)://\(host)\(path)" + (q.isEmpty ? "" : "?" + q), headers: headers, body: c.body)
            req.bodyFile = c.bodyFile
            req.downloadTo = c.downloadTo
            req.maxBytes = c.maxBytes
            let r = try http.perform(req)
            if (200..<300).contains(r.status) || c.accept.contains(r.status) { return r }
            throw S3Client.error(r, what: "\(c.method) s3://\(c.bucket)/\(c.key)")
        }
    }

    static func sha256(of f: (path: String, offset: Int64, length: Int64)) throws(RemoteError) -> String {
        let fd = open(f.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw RemoteError("cannot read \(f.path) to upload: \(FileIO.errnoText())", kind: .client) }
        defer { close(fd) }
        var h = SHA256()
        var buf = [UInt8](repeating: 0, count: 1 << 20)
        var off = f.offset
        var left = f.length
        while left > 0 {
            let want = Int(min(Int64(buf.count), left))
            let r = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(off)) }
            guard r > 0 else { throw RemoteError("cannot read \(f.path) to upload: \(r < 0 ? FileIO.errnoText() : "file shrank")", kind: .client) }
            h.update(data: buf[0..<r])
            off += Int64(r)
            left -= Int64(r)
        }
        return Hashing.hex(h.finalize())
    }

    /// A failed response as an error a user can act on (S3's own code and message included).
    static func error(_ r: HTTPResponse, what: String) -> RemoteError {
        let code = XMLText.first("Code", in: r.text) ?? ""
        let msg = XMLText.first("Message", in: r.text) ?? ""
        let detail = [code, msg].filter { !$0.isEmpty }.joined(separator: ": ")
        let said = "\(what): HTTP \(r.status)" + (detail.isEmpty ? "" : " (\(detail))")
        switch r.status {
        case 401, 403:
            let hint = code == "ExpiredToken" || code == "TokenRefreshRequired"
                ? "the credentials expired; refresh them (aws sso login, or new AWS_SESSION_TOKEN)"
                : "check AWS_ACCESS_KEY_ID / AWS_PROFILE and that they may access this bucket"
            return RemoteError("\(said); \(hint)", kind: .auth, httpStatus: r.status)
        case 404:
            return RemoteError("\(said); the bucket or object does not exist", kind: .notFound, httpStatus: r.status)
        case 409, 412:
            return RemoteError("\(said); another writer got there first", kind: .precondition, httpStatus: r.status)
        case 429, 503:
            return RemoteError("\(said); the service is throttling, try again later", kind: .throttled, httpStatus: r.status)
        case 500...599:
            return RemoteError("\(said); the service failed, try again later", kind: .server, httpStatus: r.status)
        default:
            return RemoteError(said, kind: .client, httpStatus: r.status)
        }
    }

    // MARK: - Operations

    /// PUT bytes. With `ifNoneMatch`, only if no object has that key yet: returns false when
    /// one did (412), true when this call created it.
    @discardableResult
    public func put(_ bytes: [UInt8], bucket: String, key: String, ifNoneMatch: Bool = false) throws(RemoteError) -> Bool {
        var c = Call(method: "PUT", bucket: bucket, key: key, body: bytes)
        if ifNoneMatch {
            c.headers.append(("If-None-Match", "*"))
            c.accept = [412]
        }
        return try send(c).status != 412
    }

    /// Uploads a file, in parts when it is large. Returns false when `ifNoneMatch` found the key taken.
    @discardableResult
    public func upload(file path: String, bucket: String, key: String, ifNoneMatch: Bool = false) throws(RemoteError) -> Bool {
        var st = stat()
        guard stat(path, &st) == 0 else { throw RemoteError("cannot upload \(path): \(FileIO.errnoText())", kind: .client) }
        let size = Int64(st.st_size)
        if size <= multipartThreshold {
            var c = Call(method: "PUT", bucket: bucket, key: key, bodyFile: (path, 0, size))
            if ifNoneMatch {
                c.headers.append(("If-None-Match", "*"))
                c.accept = [412]
            }
            return try send(c).status != 412
        }
        return try multipartUpload(file: path, size: size, bucket: bucket, key: key, ifNoneMatch: ifNoneMatch)
    }

    func multipartUpload(file path: String, size: Int64, bucket: String, key: String, ifNoneMatch: Bool) throws(RemoteError) -> Bool {
        let created = try send(Call(method: "POST", bucket: bucket, key: key, query: [("uploads", "")]))
        guard let uploadId = XMLText.first("UploadId", in: created.text) else {
            throw RemoteError("POST s3://\(bucket)/\(key)?uploads: no UploadId in the answer", kind: .server)
        }
        do throws(RemoteError) {
            let etags = try uploadParts(file: path, size: size, bucket: bucket, key: key, uploadId: uploadId)
            let xml = "<CompleteMultipartUpload>"
                + etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(XMLText.escape($0.element))</ETag></Part>" }
                .joined() + "</CompleteMultipartUpload>"
            var c = Call(method: "POST", bucket: bucket, key: key, query: [("uploadId", uploadId)], body: Array(xml.utf8))
            if ifNoneMatch {
                c.headers.append(("If-None-Match", "*"))
                c.accept = [412]
            }
            let done = try send(c)
            if done.status == 412 {
                _ = try? send(Call(method: "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadId)], accept: [404]))
                return false
            }
            // S3 may answer 200 with an error document for a failed completion.
            if XMLText.first("Code", in: done.text) != nil, XMLText.first("ETag", in: done.text) == nil {
                throw S3Client.error(HTTPResponse(status: 500, headers: done.headers, body: done.body), what: "completing s3://\(bucket)/\(key)")
            }
            return true
        } catch {
            // Parts of an abandoned upload cost storage until aborted.
            _ = try? send(Call(method: "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadId)], accept: [404]))
            throw error
        }
    }

    /// Uploads the parts `partConcurrency` at a time (each on its own pooled connection);
    /// returns their ETags in part order.
    func uploadParts(file path: String, size: Int64, bucket: String, key: String, uploadId: String) throws(RemoteError) -> [String] {
        let count = Int((size + partSize - 1) / partSize)
        let etags = Mutex([String?](repeating: nil, count: count))
        let failure = Mutex<RemoteError?>(nil)
        let width = max(1, min(partConcurrency, count))
        let done = DispatchGroup()
        for worker in 0..<width {
            done.enter()
            // Threads, not the dispatch pool: these block on the network, not the CPU.
            Thread.detachNewThread { [self] in
                defer { done.leave() }
                var i = worker
                while i < count, failure.withLock({ $0 == nil }) {
                    let offset = Int64(i) * partSize
                    do {
                        let r = try send(
                            Call(
                                method: "PUT", bucket: bucket, key: key, query: [("partNumber", String(i + 1)), ("uploadId", uploadId)],
                                bodyFile: (path, offset, min(partSize, size - offset))))
                        guard let etag = r.headers["etag"] else {
                            throw RemoteError("PUT part \(i + 1) of s3://\(bucket)/\(key): no ETag in the answer", kind: .server)
                        }
                        etags.withLock { $0[i] = etag }
                    } catch let e as RemoteError {
                        failure.withLock { if $0 == nil { $0 = e } }
                    } catch {
                        failure.withLock { if $0 == nil { $0 = RemoteError("\(error)", kind: .client) } }
                    }
                    i += width
                }
            }
        }
        done.wait()
        if let e = failure.withLock({ $0 }) { throw e }
        return etags.withLock { $0.compactMap { $0 } }
    }

    public func get(bucket: String, key: String) throws(RemoteError) -> [UInt8] {
        try send(Call(method: "GET", bucket: bucket, key: key)).body
    }

    /// Downloads into a file (written in place; callers verify and rename).
    public func download(bucket: String, key: String, to path: String) throws(RemoteError) {
        _ = try send(Call(method: "GET", bucket: bucket, key: key, downloadTo: path))
    }

    /// The object's bytes, refusing more than `maxBytes` (a manifest, a blob of known size).
    public func getIfPresent(bucket: String, key: String, maxBytes: Int64) throws(RemoteError) -> [UInt8]? {
        let r = try send(Call(method: "GET", bucket: bucket, key: key, maxBytes: maxBytes, accept: [404]))
        return r.status == 404 ? nil : r.body
    }

    /// Downloads into a file, stopping past `maxBytes` (the file is then removed).
    public func downloadIfPresent(bucket: String, key: String, to path: String, maxBytes: Int64) throws(RemoteError) -> Bool {
        let r: HTTPResponse
        do {
            r = try send(Call(method: "GET", bucket: bucket, key: key, downloadTo: path, maxBytes: maxBytes, accept: [404]))
        } catch {
            unlink(path)
            throw error
        }
        if r.status == 404 { unlink(path) }
        return r.status != 404
    }

    /// The object's metadata, or nil when there is none.
    public func head(bucket: String, key: String) throws(RemoteError) -> S3Object? {
        let r = try send(Call(method: "HEAD", bucket: bucket, key: key, accept: [404]))
        guard r.status != 404 else { return nil }
        return S3Object(key: key, size: Int64(r.headers["content-length"] ?? "") ?? 0, etag: r.headers["etag"], lastModified: r.headers["last-modified"])
    }

    public func delete(bucket: String, key: String) throws(RemoteError) {
        _ = try send(Call(method: "DELETE", bucket: bucket, key: key, accept: [404]))
    }

    /// Creates a bucket (tests and first-time setup; an existing bucket of one's own is fine).
    public func createBucket(_ bucket: String) throws(RemoteError) {
        var body: [UInt8] = []
        if region != "us-east-1" {
            body = Array("<CreateBucketConfiguration><LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        let r = try send(Call(method: "PUT", bucket: bucket, key: "", body: body, accept: [409]))
        if r.status == 409, XMLText.first("Code", in: r.text) != "BucketAlreadyOwnedByYou" {
            throw S3Client.error(r, what: "creating bucket \(bucket)")
        }
    }

    /// Every object under a prefix (ListObjectsV2, following continuation tokens; `pageSize`
    /// keys per request).
    public func list(bucket: String, prefix: String, pageSize: Int = 1000) throws(RemoteError) -> [S3Object] {
        var out: [S3Object] = []
        var token: String?
        var seenTokens = Set<String>()
        repeat {
            var q: [(name: String, value: String)] = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(pageSize))]
            if let token { q.append(("continuation-token", token)) }
            let r = try send(Call(method: "GET", bucket: bucket, key: "", query: q))
            for item in XMLText.all("Contents", in: r.text) {
                guard let key = XMLText.first("Key", in: item) else { continue }
                out.append(
                    S3Object(
                        key: XMLText.unescape(key), size: Int64(XMLText.first("Size", in: item) ?? "") ?? 0, etag: XMLText.first("ETag", in: item),
                        lastModified: XMLText.first("LastModified", in: item)))
            }
            token = XMLText.first("IsTruncated", in: r.text) == "true" ? XMLText.first("NextContinuationToken", in: r.text) : nil
            // A server that hands out a token it gave before would be listed forever.
            if let t = token, !seenTokens.insert(t).inserted {
                throw RemoteError(
                    "listing s3://\(bucket)/\(prefix) came back to a continuation token it had already given; the server's listing is broken, stopping after \(out.count) objects",
                    kind: .server)
            }
            if XMLText.first("IsTruncated", in: r.text) == "true" && token == nil {
                throw RemoteError("listing s3://\(bucket)/\(prefix) is truncated but gives no continuation token; the server's listing is broken", kind: .server)
            }
        } while token != nil
        return out
    }

    /// A URL that lets its holder GET or PUT one object until it expires (at most 7 days),
    /// without any credentials of their own.
    public func presign(_ method: String, bucket: String, key: String, expires: Int) throws(RemoteError) -> String {
        let creds = try settings.credentials()
        let (scheme, host, path) = target(bucket, key)
        let q = SigV4.presignedQuery(
            SigV4.Target(method: method, host: host, path: path), credentials: creds, region: region, service: "s3", now: clock(),
            expires: max(1, min(expires, 7 * 86400)))
        return "\(scheme)://\(host)\(path)?\(q)"
    }

    public func checkCredentials() throws(RemoteError) {
        _ = try settings.credentials()
    }

}

/// Presigned URLs used by a worker that has no credentials: plain GET and PUT, retried.
public enum PresignedTransfer {
    public static func get(_ url: String, http: HTTPClient, retry: RetryPolicy = RetryPolicy(), maxBytes: Int64 = HTTPRequest.inMemoryLimit)
        throws(RemoteError) -> [UInt8]
    {
        try retry.run { (_: Int) throws(RemoteError) -> [UInt8] in
            var req = HTTPRequest(method: "GET", url: url)
            req.maxBytes = maxBytes
            let r = try http.perform(req)
            guard (200..<300).contains(r.status) else { throw S3Client.error(r, what: "GET \(HTTPClient.redacted(url))") }
            return r.body
        }
    }

    public static func download(_ url: String, to path: String, http: HTTPClient, retry: RetryPolicy = RetryPolicy()) throws(RemoteError) {
        try retry.run { (_: Int) throws(RemoteError) in
            var req = HTTPRequest(method: "GET", url: url)
            req.downloadTo = path
            let r = try http.perform(req)
            guard (200..<300).contains(r.status) else {
                let body = (try? FileIO.readAll(path, limit: 1 << 16)) ?? []
                throw S3Client.error(HTTPResponse(status: r.status, headers: r.headers, body: body), what: "GET \(HTTPClient.redacted(url))")
            }
        }
    }

    /// PUT a file or bytes; with `ifNoneMatch`, returns false when the object already existed.
    @discardableResult
    public static func put(
        _ url: String, bytes: [UInt8] = [], file: String? = nil, ifNoneMatch: Bool = false, http: HTTPClient, retry: RetryPolicy = RetryPolicy()
    ) throws(RemoteError) -> Bool {
        try retry.run { (_: Int) throws(RemoteError) -> Bool in
            // x-ms-blob-type: what an Azure SAS PUT needs; S3 ignores it (it signs only Host).
            var headers: [(name: String, value: String)] = [("Content-Type", "application/octet-stream"), ("x-ms-blob-type", "BlockBlob")]
            if ifNoneMatch { headers.append(("If-None-Match", "*")) }
            var req = HTTPRequest(method: "PUT", url: url, headers: headers, body: bytes)
            if let file {
                var st = stat()
                guard stat(file, &st) == 0 else { throw RemoteError("cannot upload \(file): \(FileIO.errnoText())", kind: .client) }
                req.bodyFile = (file, 0, Int64(st.st_size))
            }
            let r = try http.perform(req)
            // S3 says 412 to If-None-Match on an existing object, Azure 409 (BlobAlreadyExists).
            if ifNoneMatch && (r.status == 412 || r.status == 409) { return false }
            guard (200..<300).contains(r.status) else { throw S3Client.error(r, what: "PUT \(HTTPClient.redacted(url))") }
            return true
        }
    }
}

/// Just enough XML for S3's answers: the text of the first or of every element with a name.
enum XMLText {
    static func first(_ tag: String, in text: String) -> String? {
        guard let open = text.range(of: "<\(tag)>"), let close = text.range(of: "</\(tag)>", range: open.upperBound..<text.endIndex) else {
            return nil
        }
        return String(text[open.upperBound..<close.lowerBound])
    }

    static func all(_ tag: String, in text: String) -> [String] {
        var out: [String] = []
        var rest = text[...]
        while let open = rest.range(of: "<\(tag)>"), let close = rest.range(of: "</\(tag)>", range: open.upperBound..<rest.endIndex) {
            out.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&quot;", with: "\"")
            .replacingOccurrences(of: "&apos;", with: "'").replacingOccurrences(of: "&amp;", with: "&")
    }
}
