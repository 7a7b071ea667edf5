import Foundation
import ReproSupport

/// Presigned URLs used by a worker that has no credentials: plain GET and PUT, retried.
package enum PresignedTransfer {
    package static func get(_ url: String, http: HTTPClient, retry: RetryPolicy = RetryPolicy(), maxBytes: Int64 = HTTPRequest.inMemoryLimit)
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

    package static func download(_ url: String, to path: String, http: HTTPClient, retry: RetryPolicy = RetryPolicy()) throws(RemoteError) {
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
