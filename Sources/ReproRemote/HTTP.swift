import CCurl
import Foundation
import Synchronization
import ReproSupport

/// A remote service (object storage, a REST scheduler) refused a request or could not be
/// reached. Exit code 6, so scripts can tell "the cloud is down" from a failed simulation (1),
/// a bad spec (2) or divergent results (3). Messages never contain credentials or signed URLs.
public struct RemoteError: ReproError {
    public enum Kind: String, Sendable {
        /// Connection refused, DNS, TLS: nothing answered.
        case unreachable
        case timeout
        /// 401/403, or credentials that are missing or expired.
        case auth
        case notFound
        /// A conditional write lost (412) or a conflict (409).
        case precondition
        /// 429 or 503 SlowDown after the last retry.
        case throttled
        /// 5xx after the last retry.
        case server
        /// Another 4xx: the request itself is wrong.
        case client
        /// Downloaded bytes did not hash to what was promised.
        case integrity
    }
    package let message: String
    package var kind: Kind
    package var httpStatus: Int?
    /// libcurl's CURLcode, when the transfer itself failed.
    package var curlCode: Int32?
    /// How long the service asked to be left alone (`Retry-After`, seconds), when it said.
    package var retryAfter: Double?
    public var exitCode: Int32 { 6 }
    public var description: String { message }

    public init(_ message: String, kind: Kind, httpStatus: Int? = nil, curlCode: Int32? = nil) {
        self.message = message
        self.kind = kind
        self.httpStatus = httpStatus
        self.curlCode = curlCode
    }

    /// Whether trying again later may succeed.
    package var isTransient: Bool { [.unreachable, .timeout, .throttled, .server].contains(kind) }

    /// The same error (kind, status, curl code, Retry-After) told with another message.
    package func with(message: String) -> RemoteError {
        var e = RemoteError(message, kind: kind, httpStatus: httpStatus, curlCode: curlCode)
        e.retryAfter = retryAfter
        return e
    }

    /// The same error with the answer's `Retry-After` (delay-seconds or an HTTP date, RFC 9110
    /// 10.2.3), which throttling services (Azure's 503 ServerBusy, S3's 503 SlowDown) send.
    package func retrying(after headers: [String: String]) -> RemoteError {
        guard let v = headers["retry-after"]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return self }
        var e = self
        if let n = Double(v), n >= 0 {
            e.retryAfter = n
        } else {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "GMT")
            f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            if let d = f.date(from: v) { e.retryAfter = max(0, d.timeIntervalSinceNow) }
        }
        return e
    }
}

package struct HTTPRequest: Sendable {
    package var method: String
    package var url: String
    package var headers: [(name: String, value: String)] = []
    package var body: [UInt8] = []
    /// Send the body from a slice of this file instead of `body` (multipart parts, large files).
    var bodyFile: (path: String, offset: Int64, length: Int64)? = nil
    /// Write the response body to this file instead of keeping it in memory.
    var downloadTo: String? = nil
    /// The most response-body bytes accepted (in memory or into `downloadTo`): a server that
    /// sends more is cut off with an integrity error, so an object swapped for a huge one in a
    /// bucket cannot take all memory or disk. In memory, never more than 256 MiB.
    package var maxBytes: Int64 = HTTPRequest.inMemoryLimit
    static let inMemoryLimit: Int64 = 256 << 20
    /// Seconds for the whole transfer (0: no limit) and for connecting.
    package var timeout: Double = 600
    var connectTimeout: Double = 10

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    var bodyLength: Int64 { bodyFile?.length ?? Int64(body.count) }
}

package struct HTTPResponse: Sendable {
    package var status: Int
    /// Lower-cased names.
    package var headers: [String: String]
    package var body: [UInt8]
    package var text: String { String(decoding: body, as: UTF8.self) }
}

/// One libcurl easy handle: owns the C pointer and frees it in deinit. Not shared between
/// threads; `HTTPClient` pools them so connections are kept alive across requests.
// Sendable by discipline: a handle is used by one thread at a time, taken from and returned to
// the pool under its lock.
final class CurlEasy: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    init() throws(RemoteError) {
        guard repro_curl_load() == 0 else {
            throw RemoteError(String(cString: repro_curl_load_error()), kind: .unreachable)
        }
        guard let h = repro_curl_easy_init() else { throw RemoteError("libcurl could not create a handle (out of memory?)", kind: .client) }
        handle = h
    }

    deinit { repro_curl_easy_cleanup(handle) }
}

/// A list of header lines for one request; frees the curl_slist in deinit.
final class CurlHeaderList {
    private(set) var list: UnsafeMutablePointer<curl_slist>?

    init(_ lines: [String]) {
        for line in lines { list = repro_curl_slist_append(list, line) }
    }

    deinit { repro_curl_slist_free_all(list) }
}

/// Where a transfer's bytes go and come from; reached from libcurl's callbacks through the
/// userdata pointer.
private final class Transfer {
    var body: [UInt8] = []
    var headers: [String: String] = [:]
    var outFD: Int32 = -1
    var writeFailed: Int32 = 0
    package let upload: [UInt8]
    var uploadPos = 0
    var inFD: Int32 = -1
    var inOffset: Int64 = 0
    var inRemaining: Int64 = 0
    var received: Int64 = 0
    var limit: Int64 = HTTPRequest.inMemoryLimit
    var exceeded = false

    init(upload: [UInt8]) { self.upload = upload }
}

private let writeBody: repro_curl_io_fn = { ptr, size, n, user in
    guard let user, let ptr else { return 0 }
    let t = Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue()
    let count = size * n
    t.received += Int64(count)
    if t.received > t.limit {
        t.exceeded = true
        return 0  // libcurl aborts the transfer
    }
    if t.outFD >= 0 {
        var done = 0
        while done < count {
            let w = write(t.outFD, ptr + done, count - done)
            if w < 0 {
                if errno == EINTR { continue }
                t.writeFailed = errno
                return 0
            }
            done += w
        }
    } else {
        ptr.withMemoryRebound(to: UInt8.self, capacity: count) { t.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: count)) }
    }
    return count
}

private let writeHeader: repro_curl_io_fn = { ptr, size, n, user in
    guard let user, let ptr else { return 0 }
    let t = Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue()
    let count = size * n
    let line = ptr.withMemoryRebound(to: UInt8.self, capacity: count) { String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self) }
    // A new status line (after a redirect or 100-continue) starts a new header set.
    if line.hasPrefix("HTTP/") { t.headers = [:] }
    if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].lowercased()
        t.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
    }
    return count
}

private let readBody: repro_curl_io_fn = { ptr, size, n, user in
    guard let user, let ptr else { return 0 }
    let t = Unmanaged<Transfer>.fromOpaque(user).takeUnretainedValue()
    let room = size * n
    if t.inFD >= 0 {
        let want = Int(min(Int64(room), t.inRemaining))
        guard want > 0 else { return 0 }
        let r = pread(t.inFD, ptr, want, off_t(t.inOffset))
        guard r > 0 else { return Int(CURL_READFUNC_ABORT) }
        t.inOffset += Int64(r)
        t.inRemaining -= Int64(r)
        return r
    }
    let k = min(room, t.upload.count - t.uploadPos)
    guard k > 0 else { return 0 }
    t.upload.withUnsafeBytes { src in
        if let base = src.baseAddress { UnsafeMutableRawPointer(ptr).copyMemory(from: base + t.uploadPos, byteCount: k) }
    }
    t.uploadPos += k
    return k
}

/// HTTP over libcurl: one request at a time per handle, handles pooled across threads.
/// Redirects are not followed (a signed request must not be replayed elsewhere).
package final class HTTPClient: Sendable {
    private let pool = Mutex<[CurlEasy]>([])

    public init() {}

    /// One for requests that are not part of a transfer (credentials): its connections kept.
    package static let shared = HTTPClient()

    /// Requests sent by this process (for REPRO_TRACE and the throughput figures).
    package static let sent = Atomic<Int>(0)

    package func perform(_ req: HTTPRequest) throws(RemoteError) -> HTTPResponse {
        HTTPClient.sent.add(1, ordering: .relaxed)
        let pooled = pool.withLock { p in p.popLast() }
        let easy: CurlEasy
        if let pooled { easy = pooled } else { easy = try CurlEasy() }
        defer { pool.withLock { p in if p.count < 16 { p.append(easy) } } }
        return try HTTPClient.perform(req, on: easy)
    }

    private static func perform(_ req: HTTPRequest, on easy: CurlEasy) throws(RemoteError) -> HTTPResponse {
        let h = easy.handle
        repro_curl_easy_reset(h)
        let transfer = Transfer(upload: req.body)
        if let f = req.bodyFile {
            transfer.inFD = open(f.path, O_RDONLY | O_CLOEXEC)
            guard transfer.inFD >= 0 else {
                throw RemoteError("cannot read \(f.path) to upload: \(FileIO.errnoText())", kind: .client)
            }
            transfer.inOffset = f.offset
            transfer.inRemaining = f.length
        }
        defer { if transfer.inFD >= 0 { close(transfer.inFD) } }
        if let path = req.downloadTo {
            transfer.outFD = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard transfer.outFD >= 0 else {
                throw RemoteError("cannot write \(path) to download into: \(FileIO.errnoText())", kind: .client)
            }
        }
        defer { if transfer.outFD >= 0 { close(transfer.outFD) } }
        let user = Unmanaged.passUnretained(transfer).toOpaque()
        // Header values never hold a line break: one would let a value smuggle in a header.
        var lines = ["Expect:"]
        for (n, v) in req.headers where !v.contains(where: { $0 == "\r" || $0 == "\n" }) { lines.append("\(n): \(v)") }
        let headerList = CurlHeaderList(lines)
        repro_curl_set_str(h, CURLOPT_URL, req.url)
        // The path is sent as signed: libcurl would otherwise squash `/../` (a key named
        // `runs/../../other-team/x` must name that key, not another prefix's object).
        repro_curl_set_long(h, CURLOPT_PATH_AS_IS, 1)
        repro_curl_set_long(h, CURLOPT_NOSIGNAL, 1)
        repro_curl_set_long(h, CURLOPT_FOLLOWLOCATION, 0)
        repro_curl_set_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(req.connectTimeout * 1000))
        repro_curl_set_long(h, CURLOPT_TIMEOUT_MS, Int(req.timeout * 1000))
        // Abort a transfer that moves under 1 KB/s for 60 s: a stalled server, not a slow link.
        repro_curl_set_long(h, CURLOPT_LOW_SPEED_LIMIT, 1024)
        repro_curl_set_long(h, CURLOPT_LOW_SPEED_TIME, 60)
        repro_curl_set_ptr(h, CURLOPT_HTTPHEADER, headerList.list.map { UnsafeMutableRawPointer($0) })
        repro_curl_set_fn(h, CURLOPT_WRITEFUNCTION, writeBody)
        repro_curl_set_ptr(h, CURLOPT_WRITEDATA, user)
        repro_curl_set_fn(h, CURLOPT_HEADERFUNCTION, writeHeader)
        repro_curl_set_ptr(h, CURLOPT_HEADERDATA, user)
        switch req.method {
        case "GET": break
        case "HEAD": repro_curl_set_long(h, CURLOPT_NOBODY, 1)
        default:
            if req.bodyLength > 0 || req.method == "PUT" || req.method == "POST" {
                repro_curl_set_long(h, CURLOPT_UPLOAD, 1)
                repro_curl_set_off(h, CURLOPT_INFILESIZE_LARGE, req.bodyLength)
                repro_curl_set_fn(h, CURLOPT_READFUNCTION, readBody)
                repro_curl_set_ptr(h, CURLOPT_READDATA, user)
            }
            repro_curl_set_str(h, CURLOPT_CUSTOMREQUEST, req.method)
        }
        transfer.limit = req.downloadTo == nil ? min(req.maxBytes, HTTPRequest.inMemoryLimit) : req.maxBytes
        let rc = repro_curl_easy_perform(h)
        withExtendedLifetime(headerList) {}
        if transfer.exceeded {
            throw RemoteError(
                "\(req.method) \(HTTPClient.redacted(req.url)) sent more than the \(transfer.limit) bytes expected; refusing it (an object replaced in the bucket?)",
                kind: .integrity)
        }
        if transfer.writeFailed != 0 {
            throw RemoteError(
                "cannot write the download to \(req.downloadTo ?? "?"): \(String(cString: strerror(transfer.writeFailed)))", kind: .client)
        }
        guard rc == CURLE_OK else {
            let what = String(cString: repro_curl_easy_strerror(rc))
            let kind: RemoteError.Kind = rc == CURLE_OPERATION_TIMEDOUT ? .timeout : .unreachable
            throw RemoteError("\(req.method) \(HTTPClient.redacted(req.url)) failed: \(what)", kind: kind, curlCode: Int32(rc.rawValue))
        }
        return HTTPResponse(status: repro_curl_status(h), headers: transfer.headers, body: transfer.body)
    }

    /// A URL fit for a message: no query string (a presigned URL's signature and token live
    /// there) and no user:password.
    package static func redacted(_ url: String) -> String {
        var u = url
        if let q = u.firstIndex(of: "?") { u = String(u[..<q]) + "?…" }
        if let scheme = u.range(of: "://"), let at = u[scheme.upperBound...].firstIndex(of: "@"),
            !u[scheme.upperBound..<at].contains("/")
        {
            u = String(u[..<scheme.upperBound]) + String(u[u.index(after: at)...])
        }
        return u
    }
}

/// Retries with exponential backoff and jitter, for requests that may succeed later.
public struct RetryPolicy: Sendable {
    package var attempts: Int = 5
    package var baseDelay: Double = 0.2
    package var maxDelay: Double = 10

    public init(attempts: Int = 5, baseDelay: Double = 0.2, maxDelay: Double = 10) {
        self.attempts = attempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    package func delay(afterAttempt n: Int) -> Double {
        let d = min(maxDelay, baseDelay * pow(2, Double(n)))
        return d / 2 + Double.random(in: 0...(d / 2))
    }

    /// The pause before the next try: the backoff, or longer when the service asked (at most a
    /// minute: a longer ask is left to the caller, which gives up on this call).
    package func pause(afterAttempt n: Int, _ error: RemoteError) -> Double {
        max(delay(afterAttempt: n), min(error.retryAfter ?? 0, 60))
    }

    /// Runs `body` until it succeeds, throws a non-transient error, or attempts run out.
    package func run<T>(_ body: (Int) throws(RemoteError) -> T) throws(RemoteError) -> T {
        var n = 0
        while true {
            do {
                return try body(n)
            } catch {
                n += 1
                guard error.isTransient, n < attempts else { throw error }
                usleep(UInt32(pause(afterAttempt: n - 1, error) * 1_000_000))
            }
        }
    }
}
