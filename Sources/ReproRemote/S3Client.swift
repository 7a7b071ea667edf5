import Crypto
import Foundation
import Synchronization
import ReproSupport

/// An S3 client over libcurl with Signature V4: works with AWS and with any S3-compatible
/// service (`endpoint:` in config or `AWS_ENDPOINT_URL_S3`, path-style addressing). Transient
/// failures (5xx, 429, timeouts, refused connections) are retried with backoff.
package final class S3Client: ObjectTransport {
    package let settings: AWSSettings
    package let region: String
    /// `scheme://host[:port]` of a custom endpoint; nil for AWS itself.
    let endpoint: (scheme: String, host: String)?
    let http: HTTPClient
    package let retry: RetryPolicy
    /// Files larger than this go up in parts of `partSize` (S3 allows at most 10,000 parts).
    let multipartThreshold: Int64
    let partSize: Int64
    /// Parts in flight at once.
    let partConcurrency: Int
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

    /// Buckets found in another region than `region` (S3's 301 and `x-amz-bucket-region`):
    /// asked there from then on.
    private let bucketRegions = Mutex<[String: String]>([:])

    /// The region a bucket's requests are signed for (and, on AWS, addressed to).
    func region(for bucket: String) -> String { bucketRegions.withLock { $0[bucket] } ?? region }

    /// Where a request goes: scheme, Host header and the encoded path.
    func target(_ bucket: String, _ key: String) -> (scheme: String, host: String, path: String) {
        let region = self.region(for: bucket)
        let encodedKey = key.isEmpty ? "" : "/" + SigV4.encode(key, keepSlash: true)
        if let e = endpoint { return (e.scheme, e.host, "/" + bucket + encodedKey) }
        // Virtual-hosted style, unless the bucket name has dots (TLS names would not match).
        if bucket.contains(".") { return ("https", "s3.\(region).amazonaws.com", "/" + bucket + encodedKey) }
        return ("https", "\(bucket).s3.\(region).amazonaws.com", encodedKey.isEmpty ? "/" : encodedKey)
    }

    /// Signs and sends one call, retrying transient failures; credentials are read per attempt.
    /// A bucket in another region (301 with `x-amz-bucket-region`) is followed there once, and
    /// remembered.
    package func send(_ c: ObjectCall) throws(RemoteError) -> HTTPResponse {
        let before = region(for: c.bucket)
        do {
            return try sendOnce(c)
        } catch {
            guard error.httpStatus == 301 || error.httpStatus == 400, region(for: c.bucket) != before else { throw error }
            return try sendOnce(c)
        }
    }

    private func sendOnce(_ c: ObjectCall) throws(RemoteError) -> HTTPResponse {
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
            headers += SigV4.sign(
                t, headers: headers, payloadHash: payloadHash, credentials: creds, region: region(for: c.bucket), service: "s3", now: clock())
            return try c.perform(with: http, base: "\(scheme)://\(host)\(path)", query: c.query, headers: headers) { r in
                if r.status == 301 || r.status == 400, let moved = r.headers["x-amz-bucket-region"], !moved.isEmpty {
                    bucketRegions.withLock { $0[c.bucket] = moved }
                }
                return S3Client.error(r, what: "\(c.method) s3://\(c.bucket)/\(c.key)")
            }
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
        classify(r, what: what).retrying(after: r.headers)
    }

    private static func classify(_ r: HTTPResponse, what: String) -> RemoteError {
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

    /// SigV4 signs the Content-Type `send` sets; nothing else is needed on a PUT.
    package var putHeaders: [(name: String, value: String)] { [] }
    package var keyTakenStatuses: Set<Int> { [412] }

    /// Uploads a file, in parts when it is large. Returns false when `ifNoneMatch` found the key taken.
    @discardableResult
    package func upload(file path: String, bucket: String, key: String, ifNoneMatch: Bool = false) throws(RemoteError) -> Bool {
        let size = try Self.fileSize(path)
        if size <= multipartThreshold {
            return try putObject(ObjectCall(method: "PUT", bucket: bucket, key: key, bodyFile: (path, 0, size)), ifNoneMatch: ifNoneMatch)
        }
        return try multipartUpload(file: path, size: size, bucket: bucket, key: key, ifNoneMatch: ifNoneMatch)
    }

    func multipartUpload(file path: String, size: Int64, bucket: String, key: String, ifNoneMatch: Bool) throws(RemoteError) -> Bool {
        let created = try send(ObjectCall(method: "POST", bucket: bucket, key: key, query: [("uploads", "")]))
        guard let uploadId = XMLText.first("UploadId", in: created.text) else {
            throw RemoteError("POST s3://\(bucket)/\(key)?uploads: no UploadId in the answer", kind: .server)
        }
        do throws(RemoteError) {
            let etags = try uploadParts(file: path, size: size, bucket: bucket, key: key, uploadId: uploadId)
            let xml = "<CompleteMultipartUpload>"
                + etags.enumerated().map { "<Part><PartNumber>\($0.offset + 1)</PartNumber><ETag>\(XMLText.escape($0.element))</ETag></Part>" }
                .joined() + "</CompleteMultipartUpload>"
            var c = ObjectCall(method: "POST", bucket: bucket, key: key, query: [("uploadId", uploadId)], body: Array(xml.utf8))
            if ifNoneMatch {
                c.headers.append(("If-None-Match", "*"))
                c.accept = [412]
            }
            let done = try send(c)
            if done.status == 412 {
                _ = try? send(ObjectCall(method: "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadId)], accept: [404]))
                return false
            }
            // S3 may answer 200 with an error document for a failed completion.
            if XMLText.first("Code", in: done.text) != nil, XMLText.first("ETag", in: done.text) == nil {
                throw S3Client.error(HTTPResponse(status: 500, headers: done.headers, body: done.body), what: "completing s3://\(bucket)/\(key)")
            }
            return true
        } catch {
            // Parts of an abandoned upload cost storage until aborted.
            _ = try? send(ObjectCall(method: "DELETE", bucket: bucket, key: key, query: [("uploadId", uploadId)], accept: [404]))
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
                            ObjectCall(
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

    /// Downloads into a file (written in place; callers verify and rename).
    package func download(bucket: String, key: String, to path: String) throws(RemoteError) {
        _ = try send(ObjectCall(method: "GET", bucket: bucket, key: key, downloadTo: path))
    }

    /// Creates a bucket (tests and first-time setup; an existing bucket of one's own is fine).
    package func createBucket(_ bucket: String) throws(RemoteError) {
        var body: [UInt8] = []
        if region != "us-east-1" {
            body = Array("<CreateBucketConfiguration><LocationConstraint>\(region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        let r = try send(ObjectCall(method: "PUT", bucket: bucket, key: "", body: body, accept: [409]))
        if r.status == 409, XMLText.first("Code", in: r.text) != "BucketAlreadyOwnedByYou" {
            throw S3Client.error(r, what: "creating bucket \(bucket)")
        }
    }

    /// Every object under a prefix (ListObjectsV2, following continuation tokens; `pageSize`
    /// keys per request).
    package func list(bucket: String, prefix: String, pageSize: Int = 1000) throws(RemoteError) -> [S3Object] {
        try listPages(
            bucket: bucket, prefix: prefix, scheme: "s3",
            query: { token in
                [("list-type", "2"), ("prefix", prefix), ("max-keys", String(pageSize))] + (token.map { [("continuation-token", $0)] } ?? [])
            },
            read: { page in
                let objects = page.all("Contents").compactMap { item -> S3Object? in
                    guard let key = item.text(of: "Key") else { return nil }
                    return S3Object(
                        key: key, size: Int64(item.text(of: "Size") ?? "") ?? 0, etag: item.text(of: "ETag"), lastModified: item.text(of: "LastModified"))
                }
                let truncated = page.text(of: "IsTruncated") == "true"
                return (objects, truncated ? page.text(of: "NextContinuationToken") : nil, truncated)
            })
    }

    package func credentialExpiry() -> Double? { (try? settings.credentials())?.expiration }

    /// A URL that lets its holder GET or PUT one object until it expires (at most 7 days),
    /// without any credentials of their own.
    package func presign(_ method: String, bucket: String, key: String, expires: Int) throws(RemoteError) -> String {
        let creds = try settings.credentials()
        let (scheme, host, path) = target(bucket, key)
        let q = SigV4.presignedQuery(
            SigV4.Target(method: method, host: host, path: path), credentials: creds, region: region(for: bucket), service: "s3", now: clock(),
            expires: max(1, min(expires, 7 * 86400)))
        return "\(scheme)://\(host)\(path)?\(q)"
    }

    package func checkCredentials() throws(RemoteError) {
        _ = try settings.credentials()
    }

}
