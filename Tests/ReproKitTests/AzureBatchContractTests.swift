import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote

/// Azure Batch and Azure Blob Storage through their contract test server
/// (fixtures/contract/azure_server.py: the documented REST subsets, Shared Key checked from the
/// documentation, SAS checked with the azure-storage-blob SDK, each task run as a local
/// process with a Batch node's environment). Contract tests: what Azure documents, not Azure.
final class AzureBatchContractTests: XCTestCase {
    static let storageKey = Data("repro-contract-storage-key-0123456789".utf8).base64EncodedString()
    static let batchKey = Data("repro-contract-batch-key-0123456789".utf8).base64EncodedString()
    static let env = [
        "AZURE_BATCH_ACCOUNT": "reprobatch", "AZURE_BATCH_ACCESS_KEY": batchKey, "AZURE_STORAGE_ACCOUNT": "reprostore",
        "AZURE_STORAGE_KEY": storageKey,
    ]

    final class Server {
        let contract: ContractServer
        var port: Int { contract.port }
        var batchURL: String { "http://127.0.0.1:\(port)/batch" }
        var blobURL: String { "http://127.0.0.1:\(port)/reprostore" }

        init(_ extra: [String] = []) throws {
            contract = try ContractServer(script: "azure_server.py", arguments: extra, whatIsMissing: "python3 with azure-storage-blob")
        }

        func get(_ what: String) -> [JSONValue] { contract.testList(what) }

        func blob(retry: RetryPolicy = RetryPolicy(attempts: 2, baseDelay: 0.05), blockThreshold: Int64 = 64 << 20, blockSize: Int64 = 16 << 20) throws
            -> AzureBlobClient
        {
            try AzureBlobClient(account: "reprostore", endpoint: blobURL, environment: AzureBatchContractTests.env, retry: retry,
                blockThreshold: blockThreshold, blockSize: blockSize)
        }
    }

    func repo(_ server: Server, pool: String = "repro-pool", spec: String? = nil) throws -> TempRepo {
        let repo = try TempRepo()
        if let spec { repo.write("sim.yaml", spec) } else { try repo.writeDNARepair(population: 20) }
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  seed: [\((1...20).map(String.init).joined(separator: ", "))]\n")
        let container = "staging-" + UUID().uuidString.prefix(8).lowercased()
        try server.blob().createContainer(container)
        repo.write(".repro.yaml", """
            backends:
              az:
                type: azure-batch
                account_url: \(server.batchURL)
                pool_id: \(pool)
                storage_account: reprostore
                container: \(container)
                blob_endpoint: \(server.blobURL)
                poll_interval: 0.3s
                manifest_grace: 5s

            """)
        repo.commitAll("azure batch")
        return repo
    }

    func testExampleSimulationAndVerifyAgainstLocal() throws {
        let server = try Server()
        let repo = try repo(server)
        let env = AzureBatchContractTests.env
        let local = repro(["run", "sim.yaml", "--backend", "local", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(local.code, 0, local.err)
        let az = repro(["run", "sim.yaml", "--backend", "az", "--no-cache", "--no-fallback", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(az.code, 0, az.err)
        let run = parseJSON(az.out)
        XCTAssertEqual(run["backend_type"]?.stringValue, "azure-batch")
        XCTAssertEqual(outputHashes(run), outputHashes(parseJSON(local.out)))
        XCTAssertFalse(outputHashes(run).isEmpty)
        let requests = server.get("requests")
        XCTAssertTrue(requests.contains { $0["method"]?.stringValue == "PATCH" && $0["body"]?["onAllTasksComplete"]?.stringValue == "terminatejob" })
        let verify = repro(["verify", "sim.yaml", "--backends", "local,az"], cwd: repo.path, env: env)
        XCTAssertEqual(verify.code, 0, verify.out + verify.err)
        XCTAssertTrue(verify.out.contains("IDENTICAL"), verify.out)
    }

    func testTwentyPointSweepMatchesLocal() throws {
        let server = try Server()
        let repo = try repo(server)
        let env = AzureBatchContractTests.env
        let az = repro(["sweep", "sweep.yaml", "--backend", "az", "--json"], cwd: repo.path, env: env)
        XCTAssertEqual(az.code, 0, az.err)
        let points = parseJSON(az.out)["runs"]?.arrayValue ?? []
        XCTAssertEqual(points.filter { $0["status"]?.stringValue == "succeeded" && $0["backend"]?.stringValue == "az" }.count, 20)
        // The same sweep computed locally in a clone: the same outputs, point by point.
        repo.assertSweepMatchesLocalClone(points, env: env)
    }

    /// 120 points: AddTaskCollection in calls of at most 100, List Tasks followed page by page;
    /// throttled requests retried; a task whose node is preempted is requeued by Batch and
    /// still ends with its outputs.
    func testChunksPagesThrottlingAndPreemption() throws {
        let server = try Server(["--throttle", "3", "--preempt", "7"])
        let repo = try repo(server, spec: """
            name: quick
            command: [sh, -c, "printf '%s' \\"$REPRO_SEED\\" > $REPRO_OUTDIR/seed.txt"]
            code: [sim.yaml]
            outputs: [seed.txt]
            seed: 1

            """)
        repo.write("sweep.yaml", "base: sim.yaml\ngrid:\n  seed: [\((1...120).map(String.init).joined(separator: ", "))]\n")
        repo.commitAll("120 points")
        let r = repro(["sweep", "sweep.yaml", "--backend", "az", "--json"], cwd: repo.path, env: AzureBatchContractTests.env)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual((parseJSON(r.out)["runs"]?.arrayValue ?? []).filter { $0["status"]?.stringValue == "succeeded" }.count, 120)
        let requests = server.get("requests")
        XCTAssertEqual(requests.filter { $0["throttled"] == .bool(true) }.count, 3)
        let adds = requests.filter { $0["path"]?.stringValue?.hasSuffix("/addtaskcollection") == true && $0["throttled"] != .bool(true) }
        XCTAssertEqual(adds.map { $0["body"]?["value"]?.arrayValue?.count ?? 0 }, [100, 20])
        XCTAssertEqual(server.get("tasks").filter { $0["requeueCount"]?.intValue == 1 }.count, 1, "one task preempted and requeued")
    }

    func testWrongKeyAndMissingPoolAreClearErrors() throws {
        let server = try Server()
        let repo = try repo(server)
        var bad = AzureBatchContractTests.env
        bad["AZURE_BATCH_ACCESS_KEY"] = Data("not-the-key".utf8).base64EncodedString()
        let r = repro(["run", "sim.yaml", "--backend", "az", "--no-fallback"], cwd: repo.path, env: bad)
        XCTAssertEqual(r.code, 6, r.err)
        XCTAssertTrue(r.err.contains("AuthenticationFailed") && r.err.contains("AZURE_BATCH_ACCESS_KEY"), r.err)
        let missing = try self.repo(server, pool: "no-such-pool")
        let check = repro(["backends"], cwd: missing.path, env: AzureBatchContractTests.env)
        XCTAssertEqual(check.code, 6)
        XCTAssertTrue((check.out + check.err).contains("backends.az.pool_id 'no-such-pool' does not exist"), check.out + check.err)
    }

    /// The Blob client on its own: blocks for large files, listing page by page, conditional
    /// writes, and SAS URLs a credential-less worker can use.
    func testBlobClientBlocksListingConditionalWritesAndSAS() throws {
        let server = try Server()
        let blob = try server.blob(blockThreshold: 1 << 20, blockSize: 1 << 20)
        try blob.createContainer("c1")
        let file = NSTemporaryDirectory() + "azblob-" + UUID().uuidString
        defer { unlink(file) }
        var bytes = [UInt8](repeating: 0, count: (3 << 20) + 123)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        FileManager.default.createFile(atPath: file, contents: Data(bytes))
        XCTAssertTrue(try blob.upload(file: file, bucket: "c1", key: "big/one.bin"))
        XCTAssertEqual(try blob.get(bucket: "c1", key: "big/one.bin"), bytes)
        XCTAssertEqual(try blob.head(bucket: "c1", key: "big/one.bin")?.size, Int64(bytes.count))
        XCTAssertFalse(try blob.upload(file: file, bucket: "c1", key: "big/one.bin", ifNoneMatch: true), "exists: not overwritten")
        for i in 0..<5 { try blob.put(Array("x\(i)".utf8), bucket: "c1", key: "small/\(i) name.txt") }
        XCTAssertFalse(try blob.put(Array("y".utf8), bucket: "c1", key: "small/0 name.txt", ifNoneMatch: true))
        XCTAssertEqual(try blob.list(bucket: "c1", prefix: "small/", pageSize: 2).map(\.key), (0..<5).map { "small/\($0) name.txt" })
        // SAS: a worker with no credentials reads one blob and writes another, and nothing else.
        let http = HTTPClient()
        let get = try blob.presign("GET", bucket: "c1", key: "small/1 name.txt", expires: 600)
        XCTAssertEqual(try PresignedTransfer.get(get, http: http), Array("x1".utf8))
        let put = try blob.presign("PUT", bucket: "c1", key: "out/manifest.json", expires: 600)
        XCTAssertTrue(try PresignedTransfer.put(put, bytes: Array("{}".utf8), ifNoneMatch: true, http: http))
        XCTAssertFalse(try PresignedTransfer.put(put, bytes: Array("{}".utf8), ifNoneMatch: true, http: http), "If-None-Match over SAS")
        let tampered = get.replacingOccurrences(of: "small/1", with: "small/2")
        XCTAssertThrowsError(try PresignedTransfer.get(tampered, http: http, retry: RetryPolicy(attempts: 1))) { e in
            XCTAssertEqual((e as? RemoteError)?.httpStatus, 403)
        }
        try blob.delete(bucket: "c1", key: "small/0 name.txt")
        XCTAssertNil(try blob.head(bucket: "c1", key: "small/0 name.txt"))
        // A wrong account key is refused by the Shared Key check, as a credentials problem.
        var wrong = AzureBatchContractTests.env
        wrong["AZURE_STORAGE_KEY"] = Data("another-key".utf8).base64EncodedString()
        let intruder = try AzureBlobClient(account: "reprostore", endpoint: server.blobURL, environment: wrong, retry: RetryPolicy(attempts: 1))
        XCTAssertThrowsError(try intruder.get(bucket: "c1", key: "small/1 name.txt")) { e in
            XCTAssertEqual((e as? RemoteError)?.kind, .auth, "\(e)")
        }
    }
}
