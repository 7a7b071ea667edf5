import Foundation
import ReproSupport

/// One request to object storage before its store signs it: S3 and Azure Blob take the same
/// shape and differ only in how it is addressed and signed (`ObjectTransport.send`).
package struct ObjectCall {
    var method: String
    /// An S3 bucket or a Blob container.
    var bucket: String
    /// The object's key or blob name ("" for the bucket itself).
    var key: String
    var query: [(name: String, value: String)] = []
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []
    var bodyFile: (path: String, offset: Int64, length: Int64)? = nil
    var downloadTo: String? = nil
    /// The most body bytes accepted (see `HTTPRequest.maxBytes`).
    var maxBytes: Int64 = HTTPRequest.inMemoryLimit
    /// Statuses the caller handles itself (404 for HEAD, 409/412 for conditional writes).
    var accept: Set<Int> = []
}

/// Object storage over signed HTTP: a store says how a call is signed and sent, and which
/// statuses mean "a conditional write found the key taken"; reading, metadata, deletion and
/// whole-object writes are the same requests on both services.
package protocol ObjectTransport: ObjectStore {
    /// Signs and sends one call, retrying transient failures; credentials are read per attempt.
    func send(_ c: ObjectCall) throws(RemoteError) -> HTTPResponse
    /// The headers a whole-object PUT carries on this service.
    var putHeaders: [(name: String, value: String)] { get }
    /// What a PUT with `If-None-Match: *` answers when the key exists (S3 412; Azure 409 or 412).
    var keyTakenStatuses: Set<Int> { get }
}

extension ObjectCall {
    /// Sends the call once, signed: to `base` (scheme, host, path) with `query`, carrying
    /// `headers`. A status outside 2xx that the call does not accept becomes `failure`'s error.
    func perform(
        with http: HTTPClient, base: String, query: [(name: String, value: String)], headers: [(name: String, value: String)],
        failure: (HTTPResponse) -> RemoteError
    ) throws(RemoteError) -> HTTPResponse {
        let q = SigV4.canonicalQuery(query)
        var req = HTTPRequest(method: method, url: base + (q.isEmpty ? "" : "?" + q), headers: headers, body: body)
        req.bodyFile = bodyFile
        req.downloadTo = downloadTo
        req.maxBytes = maxBytes
        let r = try http.perform(req)
        if (200..<300).contains(r.status) || accept.contains(r.status) { return r }
        throw failure(r)
    }
}

extension ObjectTransport {
    /// A whole-object PUT of bytes or a file's range; with `ifNoneMatch` only when the key is
    /// free: false when it was taken.
    func putObject(_ call: ObjectCall, ifNoneMatch: Bool, objectHeaders: Bool = true) throws(RemoteError) -> Bool {
        var c = call
        if objectHeaders { c.headers = putHeaders + c.headers }
        if ifNoneMatch {
            c.headers.append(("If-None-Match", "*"))
            c.accept = keyTakenStatuses
        }
        return try !keyTakenStatuses.contains(send(c).status)
    }

    package func get(bucket: String, key: String) throws(RemoteError) -> [UInt8] {
        try send(ObjectCall(method: "GET", bucket: bucket, key: key)).body
    }

    /// The object's bytes, refusing more than `maxBytes` (a manifest, a blob of known size).
    package func getIfPresent(bucket: String, key: String, maxBytes: Int64) throws(RemoteError) -> [UInt8]? {
        let r = try send(ObjectCall(method: "GET", bucket: bucket, key: key, maxBytes: maxBytes, accept: [404]))
        return r.status == 404 ? nil : r.body
    }

    /// Downloads into a file, stopping past `maxBytes` (the file is then removed).
    package func downloadIfPresent(bucket: String, key: String, to path: String, maxBytes: Int64) throws(RemoteError) -> Bool {
        let r: HTTPResponse
        do {
            r = try send(ObjectCall(method: "GET", bucket: bucket, key: key, downloadTo: path, maxBytes: maxBytes, accept: [404]))
        } catch {
            unlink(path)
            throw error
        }
        if r.status == 404 { unlink(path) }
        return r.status != 404
    }

    /// The object's metadata, or nil when there is none.
    package func head(bucket: String, key: String) throws(RemoteError) -> S3Object? {
        let r = try send(ObjectCall(method: "HEAD", bucket: bucket, key: key, accept: [404]))
        guard r.status != 404 else { return nil }
        return S3Object(key: key, size: Int64(r.headers["content-length"] ?? "") ?? 0, etag: r.headers["etag"], lastModified: r.headers["last-modified"])
    }

    /// Deletes an object; one already gone is fine.
    package func delete(bucket: String, key: String) throws(RemoteError) {
        _ = try send(ObjectCall(method: "DELETE", bucket: bucket, key: key, accept: [404]))
    }

    /// PUT bytes. With `ifNoneMatch`, only if no object has that key yet: returns false when
    /// one did, true when this call created it.
    @discardableResult
    package func put(_ bytes: [UInt8], bucket: String, key: String, ifNoneMatch: Bool = false) throws(RemoteError) -> Bool {
        try putObject(ObjectCall(method: "PUT", bucket: bucket, key: key, body: bytes), ifNoneMatch: ifNoneMatch)
    }

    /// The size of a file to upload.
    static func fileSize(_ path: String) throws(RemoteError) -> Int64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw RemoteError("cannot upload \(path): \(FileIO.errnoText())", kind: .client) }
        return Int64(st.st_size)
    }

    /// Every object of a paged listing. `query` makes a page's query from the marker the last
    /// page gave (nil first); `read` takes a page's objects and the next marker out of it (nil:
    /// the last page; `truncated` says the page claimed more). A server that hands back a marker
    /// it gave before, or claims more without a marker, is an error: it would be listed forever.
    func listPages(
        bucket: String, prefix: String, scheme: String, query: (String?) -> [(name: String, value: String)],
        read: (XMLElement) -> (objects: [S3Object], next: String?, truncated: Bool)
    ) throws(RemoteError) -> [S3Object] {
        let what = "listing \(scheme)://\(bucket)/\(prefix)"
        var out: [S3Object] = []
        var marker: String?
        var seen = Set<String>()
        repeat {
            let r = try send(ObjectCall(method: "GET", bucket: bucket, key: "", query: query(marker)))
            let page: XMLElement
            do { page = try XMLText.parse(r.text) } catch {
                // An answer that is not a listing must not read as an empty one.
                throw RemoteError("\(what): the answer is \(error)", kind: .server)
            }
            let got = read(page)
            out += got.objects
            marker = got.next.flatMap { $0.isEmpty ? nil : $0 }
            if let m = marker, !seen.insert(m).inserted {
                throw RemoteError(
                    "\(what) came back to a continuation token it had already given; the server's listing is broken, stopping after \(out.count) objects",
                    kind: .server)
            }
            if got.truncated && marker == nil {
                throw RemoteError("\(what) is truncated but gives no continuation token; the server's listing is broken", kind: .server)
            }
        } while marker != nil
        return out
    }
}
