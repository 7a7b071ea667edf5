import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote
@testable import ReproExecution

/// The S3 client: signatures checked against botocore's own signer (moto checks none), every
/// operation against moto's S3-compatible server over real HTTP, retries against a server that
/// fails on purpose.
final class S3Tests: XCTestCase {
    static let creds = AWSCredentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")

    /// botocore signs the same request at the same instant; the signatures must be equal.
    func botocore(_ script: String, token: String? = nil) throws -> String {
        guard sh(["python3", "-c", "import botocore"], cwd: "/").code == 0 else {
            throw missingTestEnvironment("botocore is not importable; pip install botocore (scripts/deps.sh --test installs it with moto)")
        }
        let prelude = (token.map { "TOKEN = '\($0)'\n" } ?? "TOKEN = None\n") + """
            import datetime, botocore.auth as A
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
            A.get_current_datetime = lambda *a, **k: datetime.datetime(2015, 8, 30, 12, 36, 0)
            c = Credentials('AKIDEXAMPLE', 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', TOKEN)

            """
        let r = sh(["python3", "-c", prelude + script], cwd: "/")
        XCTAssertEqual(r.code, 0, r.err)
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    let at = 1_440_938_160.0  // 2015-08-30T12:36:00Z

    func testHeaderSignatureMatchesBotocore() throws {
        for token in [nil, "FQoDYXdzEXAMPLETOKEN/+="] {
            var creds = S3Tests.creds
            creds.sessionToken = token
            let body = Array("hello world, a payload\n".utf8)
            let t = SigV4.Target(
                method: "PUT", host: "127.0.0.1:5000", path: "/my-bucket/dir/a%20b%2Bc.txt",
                query: [("partNumber", "2"), ("uploadId", "x/y=z")])
            let headers: [(name: String, value: String)] = [("Host", "127.0.0.1:5000"), ("Content-Type", "application/octet-stream"), ("If-None-Match", "*")]
            let signed = SigV4.sign(t, headers: headers, payloadHash: Hashing.sha256Hex(body), credentials: creds, region: "us-east-1", service: "s3", now: at)
            let auth = signed.first { $0.name == "Authorization" }?.value ?? ""
            let expected = try botocore(
                """
                    r = AWSRequest(method='PUT', url='http://127.0.0.1:5000/my-bucket/dir/a%20b%2Bc.txt?partNumber=2&uploadId=x%2Fy%3Dz',
                                   data=b'hello world, a payload\\n',
                                   headers={'Content-Type': 'application/octet-stream', 'If-None-Match': '*'})
                    A.S3SigV4Auth(c, 's3', 'us-east-1').add_auth(r)
                    print(r.headers['Authorization'])
                    """, token: token)
            // botocore signs the same headers plus its own; compare the signature itself.
            XCTAssertEqual(auth.components(separatedBy: "Signature=").last, expected.components(separatedBy: "Signature=").last, "token: \(token ?? "none")")
            XCTAssertFalse(auth.contains(creds.secretAccessKey))
        }
    }

    func testPresignedURLMatchesBotocore() throws {
        let t = SigV4.Target(method: "GET", host: "127.0.0.1:5000", path: "/my-bucket/tasks/run%201/task.json")
        let q = SigV4.presignedQuery(t, credentials: S3Tests.creds, region: "eu-west-1", service: "s3", now: at, expires: 7200)
        let expected = try botocore(
            """
            r = AWSRequest(method='GET', url='http://127.0.0.1:5000/my-bucket/tasks/run%201/task.json')
            A.S3SigV4QueryAuth(c, 's3', 'eu-west-1', expires=7200).add_auth(r)
            print(r.url)
            """)
        func sig(_ s: String) -> String? { s.components(separatedBy: "X-Amz-Signature=").last?.components(separatedBy: "&").first }
        XCTAssertNotNil(sig(q))
        XCTAssertEqual(sig(q), sig(expected))
        XCTAssertTrue(q.contains("X-Amz-Expires=7200"))
    }

    func testOperationsAgainstAnS3CompatibleServer() throws {
        let moto = try MotoServer()
        let s3 = try moto.client()
        try s3.createBucket("repro-ops")
        try s3.createBucket("repro-ops")  // idempotent for its owner
        XCTAssertTrue(try s3.put(Array("one".utf8), bucket: "repro-ops", key: "a/b c+d.txt"))
        XCTAssertEqual(try s3.get(bucket: "repro-ops", key: "a/b c+d.txt"), Array("one".utf8))
        XCTAssertEqual(try s3.head(bucket: "repro-ops", key: "a/b c+d.txt")?.size, 3)
        XCTAssertNil(try s3.head(bucket: "repro-ops", key: "a/missing"))
        // A conditional write never replaces what is there.
        XCTAssertFalse(try s3.put(Array("two".utf8), bucket: "repro-ops", key: "a/b c+d.txt", ifNoneMatch: true))
        XCTAssertEqual(try s3.get(bucket: "repro-ops", key: "a/b c+d.txt"), Array("one".utf8))
        // Listing follows continuation tokens.
        for i in 0..<7 { try s3.put([UInt8(i)], bucket: "repro-ops", key: "list/\(i)") }
        let listed = try s3.list(bucket: "repro-ops", prefix: "list/", pageSize: 3)
        XCTAssertEqual(listed.map(\.key), (0..<7).map { "list/\($0)" })
        try s3.delete(bucket: "repro-ops", key: "list/3")
        try s3.delete(bucket: "repro-ops", key: "list/3")  // deleting what is gone is fine
        XCTAssertEqual(try s3.list(bucket: "repro-ops", prefix: "list/").count, 6)
        // A missing object is a clear not-found error, not empty bytes.
        XCTAssertThrowsError(try s3.get(bucket: "repro-ops", key: "nope")) { e in
            XCTAssertEqual((e as? RemoteError)?.kind, .notFound)
        }
    }

    func testMultipartUploadAndStreamingDownload() throws {
        let moto = try MotoServer()
        let s3 = try S3Client(
            settings: AWSSettings(environment: moto.env), multipartThreshold: 6 << 20, partSize: 5 << 20)
        try s3.createBucket("repro-mp")
        let dir = NSTemporaryDirectory() + "mp-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bytes = [UInt8](repeating: 0, count: (12 << 20) + 12345)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 13) }
        FileManager.default.createFile(atPath: dir + "/big", contents: Data(bytes))
        XCTAssertTrue(try s3.upload(file: dir + "/big", bucket: "repro-mp", key: "big"))
        // Three parts: the ETag of a multipart object says how many.
        XCTAssertTrue(try s3.head(bucket: "repro-mp", key: "big")?.etag?.contains("-3") ?? false)
        try s3.download(bucket: "repro-mp", key: "big", to: dir + "/back")
        XCTAssertEqual(try Hashing.sha256OfFile(atPath: dir + "/back").hash, Hashing.sha256Hex(bytes))
        // Conditional multipart: the key is taken, nothing replaces it.
        XCTAssertFalse(try s3.upload(file: dir + "/big", bucket: "repro-mp", key: "big", ifNoneMatch: true))
    }

    func testPresignedURLsNeedNoCredentials() throws {
        let moto = try MotoServer()
        let s3 = try moto.client()
        try s3.createBucket("repro-pre")
        let put = try s3.presign("PUT", bucket: "repro-pre", key: "w/out.bin", expires: 600)
        let http = HTTPClient()
        XCTAssertTrue(try PresignedTransfer.put(put, bytes: Array("from a worker".utf8), ifNoneMatch: true, http: http))
        XCTAssertFalse(try PresignedTransfer.put(put, bytes: Array("again".utf8), ifNoneMatch: true, http: http))
        let get = try s3.presign("GET", bucket: "repro-pre", key: "w/out.bin", expires: 600)
        XCTAssertEqual(try PresignedTransfer.get(get, http: http), Array("from a worker".utf8))
        // Nothing secret in the URL: the key id and a signature, never the secret key.
        XCTAssertFalse(get.contains("reprotestsecret"))
        XCTAssertTrue(get.contains("X-Amz-Signature="))
    }

    func testCredentialsFollowTheSDKConventions() throws {
        let home = NSTemporaryDirectory() + "awshome-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: home + "/.aws", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: home) }
        try """
            [default]
            aws_access_key_id = AKIDDEFAULT
            aws_secret_access_key = secretdefault
            [team]
            aws_access_key_id = AKIDTEAM
            aws_secret_access_key = secretteam
            aws_session_token = tokenteam
            """.write(toFile: home + "/.aws/credentials", atomically: true, encoding: .utf8)
        try "[profile team]\nregion = eu-central-1\n".write(toFile: home + "/.aws/config", atomically: true, encoding: .utf8)
        XCTAssertEqual(try AWSSettings(environment: ["HOME": home]).credentials().accessKeyId, "AKIDDEFAULT")
        let team = AWSSettings(environment: ["HOME": home, "AWS_PROFILE": "team"])
        XCTAssertEqual(try team.credentials().sessionToken, "tokenteam")
        XCTAssertEqual(team.region(configured: nil), "eu-central-1")
        // The environment wins over the file, and is read at each call (credentials rotate).
        let env = AWSSettings(environment: ["HOME": home, "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "s"])
        XCTAssertEqual(try env.credentials().accessKeyId, "AKIDENV")
        XCTAssertThrowsError(try AWSSettings(environment: ["HOME": home, "AWS_PROFILE": "nobody", "AWS_EC2_METADATA_DISABLED": "true"]).credentials()) { e in
            let m = "\(e)"
            XCTAssertTrue(m.contains("profile 'nobody'"), m)
            XCTAssertEqual((e as? RemoteError)?.kind, .auth)
        }
    }

    /// A server that answers 503 twice, then 200: the client retries; a server that answers
    /// 403 is not retried; a dead port is retried, then named in a clear error.
    func testRetriesTransientFailuresOnly() throws {
        let script = """
            import http.server, sys
            n = {'count': 0}
            class H(http.server.BaseHTTPRequestHandler):
                def log_message(self, *a): pass
                def do_GET(self):
                    n['count'] += 1
                    if self.path.startswith('/b/denied'):
                        self.send_response(403); self.end_headers(); self.wfile.write(b'<Error><Code>AccessDenied</Code></Error>'); return
                    if n['count'] <= 2:
                        self.send_response(503); self.end_headers(); self.wfile.write(b'<Error><Code>SlowDown</Code></Error>'); return
                    self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers(); self.wfile.write(b'ok')
            s = http.server.HTTPServer(('127.0.0.1', 0), H)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        defer { p.terminate() }
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let port = try XCTUnwrap(Int(line))
        let env = ["AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S", "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:\(port)"]
        let s3 = try S3Client(settings: AWSSettings(environment: env), retry: RetryPolicy(attempts: 4, baseDelay: 0.01))
        XCTAssertEqual(try s3.get(bucket: "b", key: "k"), Array("ok".utf8))
        XCTAssertThrowsError(try s3.get(bucket: "b", key: "denied")) { e in
            XCTAssertEqual((e as? RemoteError)?.kind, .auth)
            XCTAssertTrue("\(e)".contains("AccessDenied"), "\(e)")
        }
        let dead = try S3Client(
            settings: AWSSettings(environment: env.merging(["AWS_ENDPOINT_URL_S3": "http://127.0.0.1:1"]) { $1 }),
            retry: RetryPolicy(attempts: 2, baseDelay: 0.01))
        XCTAssertThrowsError(try dead.get(bucket: "b", key: "k")) { e in
            XCTAssertEqual((e as? RemoteError)?.kind, .unreachable)
            XCTAssertEqual((e as? RemoteError)?.exitCode, 6)
        }
    }
}

extension S3Tests {
    /// A job array's batch is paged: each child fetches the top document and the one page
    /// holding its index (each checked against its digest), never the whole list.
    func testABatchIsPagedAndEachChildFetchesOnlyItsPage() throws {
        let moto = try MotoServer()
        let s3 = try moto.client()
        try s3.createBucket("repro-batch")
        let scratch = NSTemporaryDirectory() + "batch-" + UUID().uuidString
        defer { FileIO.removeTree(scratch) }
        var settings = StagedSettings()
        settings.staging = S3Location(bucket: "repro-batch", prefix: "staging")
        let staging = RemoteStaging(store: s3, location: S3Location(bucket: "repro-batch", prefix: "staging"), scratch: scratch, worker: settings)
        let n = 300
        // Fake tasks: each one a real object with its digest, as issueAll stages them.
        var tasks: [(url: String, sha256: String)] = []
        for i in 0..<n {
            let body = Array("task \(i)".utf8)
            try s3.put(body, bucket: "repro-batch", key: "t/\(i)")
            tasks.append((try s3.presign("GET", bucket: "repro-batch", key: "t/\(i)", expires: 600), Hashing.sha256Hex(body)))
        }
        let top = try staging.batch(tasks, timeout: 60)
        let http = HTTPClient()
        let topDoc = try RemoteWorker.fetchSealed(top.url, sha256: top.sha256, http: http, what: "the batch")
        let per = RemoteStaging.batchPageSize(n)
        XCTAssertEqual(per, 18)
        XCTAssertEqual(topDoc["pages"]?.arrayValue?.count, (n + per - 1) / per)
        // What a child downloads: the top and one page, a small part of the whole list.
        let whole = JSONValue.object(["v": 2, "tasks": .array(tasks.map { ["url": .string($0.url), "sha256": .string($0.sha256)] })]).canonical.utf8.count
        let topBytes = try PresignedTransfer.get(top.url, http: http).count
        let pageURL = try XCTUnwrap(topDoc["pages"]?.arrayValue?.first?["url"]?.stringValue)
        let pageBytes = try PresignedTransfer.get(pageURL, http: http).count
        XCTAssertLessThan(topBytes + pageBytes, whole / 5, "a child fetches \(topBytes + pageBytes) bytes of a \(whole)-byte list")
        for i in [0, 1, 17, 18, 150, 299] {
            let e = try RemoteWorker.entry(i, of: topDoc, url: top.url, http: http)
            XCTAssertEqual(e.url, tasks[i].url)
            XCTAssertEqual(e.sha256, tasks[i].sha256)
        }
        XCTAssertThrowsError(try RemoteWorker.entry(n, of: topDoc, url: top.url, http: http))
        XCTAssertThrowsError(try RemoteWorker.entry(-1, of: topDoc, url: top.url, http: http))
        // A page replaced in the bucket is refused: its digest is in the sealed top.
        let pageKey = try XCTUnwrap(s3.list(bucket: "repro-batch", prefix: "staging/batches/").map(\.key).first { $0.hasSuffix("/0.json") })
        try s3.put(Array("{\"v\": 3, \"first\": 0, \"tasks\": []}".utf8), bucket: "repro-batch", key: pageKey)
        XCTAssertThrowsError(try RemoteWorker.entry(0, of: topDoc, url: top.url, http: http)) { e in
            XCTAssertTrue("\(e)".contains("replaced in storage"), "\(e)")
        }
        // A batch of the earlier, unpaged form is still read.
        let v2 = JSONValue.object(["v": 2, "tasks": .array(tasks.prefix(3).map { ["url": .string($0.url), "sha256": .string($0.sha256)] })])
        XCTAssertEqual(try RemoteWorker.entry(2, of: v2, url: "x", http: http).sha256, tasks[2].sha256)
    }

    /// A worker staging with its own role: `s3://` URLs, a file above the part size in parts;
    /// and a presigned PUT refuses a file over 5 GiB before sending it, saying what to do.
    func testRoleTransferUploadsInPartsAndPresignedPutsStopAt5GiB() throws {
        let moto = try MotoServer()
        let s3 = try moto.client()
        try s3.createBucket("repro-role")
        let dir = NSTemporaryDirectory() + "role-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { FileIO.removeTree(dir) }
        let bytes = [UInt8](repeating: 7, count: (11 << 20) + 5)
        FileManager.default.createFile(atPath: dir + "/out.tar", contents: Data(bytes))
        let url = "s3://repro-role/w/out.tar?endpoint=\(SigV4.encode(moto.endpoint))&part=\(5 << 20)"
        // The worker's environment has the role's credentials (here: the test server's keys).
        let role = try XCTUnwrap(try RoleTransfer(url, environment: moto.env))
        XCTAssertEqual(role.bucket, "repro-role")
        XCTAssertEqual(role.key, "w/out.tar")
        XCTAssertTrue(try role.client.upload(file: dir + "/out.tar", bucket: role.bucket, key: role.key))
        XCTAssertTrue(try s3.head(bucket: "repro-role", key: "w/out.tar")?.etag?.contains("-3") ?? false, "three parts")
        XCTAssertNil(try RoleTransfer("https://example.org/x", environment: moto.env))
        // 6 GiB, sparse: refused before a byte is sent.
        FileManager.default.createFile(atPath: dir + "/huge", contents: nil)
        XCTAssertEqual(truncate(dir + "/huge", 6 << 30), 0)
        let put = try s3.presign("PUT", bucket: "repro-role", key: "w/huge", expires: 600)
        XCTAssertThrowsError(try PresignedTransfer.put(put, file: dir + "/huge", http: HTTPClient())) { e in
            XCTAssertTrue("\(e)".contains("5 GiB") && "\(e)".contains("staging_auth: job-role"), "\(e)")
        }
    }
}

extension S3Tests {
    /// A bucket in another region: S3's 301 with x-amz-bucket-region is followed once, the
    /// request signed again for that region, and the region remembered for the next calls.
    func testABucketInAnotherRegionIsFollowedOnceAndRemembered() throws {
        let server = try ContractServer(script: "s3_region_server.py", arguments: ["--bucket-region", "eu-west-2"], whatIsMissing: "python3")
        let s3 = try S3Client(
            settings: AWSSettings(environment: ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1"]),
            endpoint: "http://127.0.0.1:\(server.port)")
        XCTAssertEqual(String(decoding: try s3.get(bucket: "far", key: "a"), as: UTF8.self), "in eu-west-2")
        XCTAssertTrue(try s3.put(Array("x".utf8), bucket: "far", key: "b"))
        XCTAssertEqual(server.testList("regions").map { $0.stringValue ?? "" }, ["us-east-1", "eu-west-2", "eu-west-2"], "followed once, then remembered")
        XCTAssertTrue(try s3.presign("GET", bucket: "far", key: "a", expires: 60).contains("%2Feu-west-2%2Fs3%2F"), "presigned for the bucket's region")
    }
}
