import Foundation
import ReproSupport
import Synchronization

/// The URLs a worker is given: presigned (it needs no credentials: plain GET and PUT,
/// retried), or `s3://BUCKET/KEY?region=&endpoint=&part=` when it stages with its job's own
/// role (requests signed with the credentials its node gives: `RoleTransfer`).
package enum PresignedTransfer {
    /// The most one PUT carries: S3's 5 GiB (Azure's Put Blob: 5000 MiB, a little less).
    package static let singlePutLimit: Int64 = 5000 << 20

    package static func get(_ url: String, http: HTTPClient, retry: RetryPolicy = RetryPolicy(), maxBytes: Int64 = HTTPRequest.inMemoryLimit)
        throws(RemoteError) -> [UInt8]
    {
        if let r = try RoleTransfer(url) {
            guard let b = try r.client.getIfPresent(bucket: r.bucket, key: r.key, maxBytes: maxBytes) else {
                throw RemoteError("GET \(url): the object does not exist", kind: .notFound, httpStatus: 404)
            }
            return b
        }
        return try retry.run { (_: Int) throws(RemoteError) -> [UInt8] in
            var req = HTTPRequest(method: "GET", url: url)
            req.maxBytes = maxBytes
            let r = try http.perform(req)
            guard (200..<300).contains(r.status) else { throw S3Client.error(r, what: "GET \(HTTPClient.redacted(url))") }
            return r.body
        }
    }

    package static func download(_ url: String, to path: String, http: HTTPClient, retry: RetryPolicy = RetryPolicy()) throws(RemoteError) {
        if let r = try RoleTransfer(url) { return try r.client.download(bucket: r.bucket, key: r.key, to: path) }
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
    package static func put(
        _ url: String, bytes: [UInt8] = [], file: String? = nil, ifNoneMatch: Bool = false, http: HTTPClient, retry: RetryPolicy = RetryPolicy()
    ) throws(RemoteError) -> Bool {
        if let r = try RoleTransfer(url) {
            if let file { return try r.client.upload(file: file, bucket: r.bucket, key: r.key, ifNoneMatch: ifNoneMatch) }
            return try r.client.put(bytes, bucket: r.bucket, key: r.key, ifNoneMatch: ifNoneMatch)
        }
        if let file {
            var st = stat()
            if stat(file, &st) == 0, Int64(st.st_size) > singlePutLimit {
                throw RemoteError(
                    "\(file) is \(st.st_size >> 20) MiB, over the 5 GiB one PUT to a presigned URL can carry; set staging_auth: job-role "
                        + "on the backend so the worker uploads it in parts with its job's own role", kind: .client)
            }
        }
        return try retry.run { (_: Int) throws(RemoteError) -> Bool in
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

/// An `s3://` URL of a worker that stages with its job's own role, and the client for it
/// (built from the worker's environment: the container's or instance's credentials).
package struct RoleTransfer {
    package let bucket: String
    package let key: String
    package let client: S3Client
    private static let clients = Mutex<[String: S3Client]>([:])

    /// nil when `url` is not an `s3://` URL.
    package init?(_ url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(RemoteError) {
        guard url.hasPrefix("s3://"), let u = URLComponents(string: url), let bucket = u.host, !bucket.isEmpty else { return nil }
        self.bucket = bucket
        key = String(u.path.dropFirst())
        let q = Dictionary((u.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { a, _ in a })
        let id = u.query ?? ""
        if let c = RoleTransfer.clients.withLock({ $0[id] }) {
            client = c
            return
        }
        do {
            let part = q["part"].flatMap { Int64($0) } ?? (16 << 20)
            client = try S3Client(
                settings: AWSSettings(environment: environment), region: q["region"], endpoint: q["endpoint"],
                multipartThreshold: part, partSize: part)
        } catch {
            throw RemoteError("\(url): \(error)", kind: .client)
        }
        RoleTransfer.clients.withLock { $0[id] = client }
    }
}
