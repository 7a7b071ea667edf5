import Foundation
import ReproKit
import ReproSupport
import ReproRemote
import ReproStore

// In-process figures for the parts repro's speed rests on. bench/run.sh runs this beside
// hyperfine's end-to-end timings and the openssl reference; see CONTRIBUTING.md.

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func time(_ repeats: Int, _ body: () throws -> Void) rethrows -> Double {
    var samples: [Double] = []
    for _ in 0..<repeats {
        let t0 = Clock.monotonic()
        try body()
        samples.append(Clock.monotonic() - t0)
    }
    return median(samples)
}

/// Copies the newest run in a store N times under new ids and keys, spread over `identities`
/// distinct code identities (half of them the one at HEAD), to time hooks at scale.
func populate(storeRoot: String, count: Int, identities: Int) throws {
    let store = try Store(root: storeRoot)
    guard let template = try store.recentRuns(limit: 1).first else {
        throw NotFoundError("the store at \(storeRoot) has no run to copy; run one first")
    }
    var batch: [RunRecord] = []
    for i in 0..<count {
        var r = template
        r.runId = String(format: "bench-%08d", i)
        r.key = Hashing.sha256Hex("bench-\(i)")
        let group = i % identities
        if group % 2 == 1, !r.code.paths.isEmpty {
            // An identity from some other commit: a made-up tree id per group.
            r.code.paths[0].id = String(Hashing.sha256Hex("tree-\(group)").prefix(40))
            r.code.submodules = []
        }
        r.status = .succeeded
        batch.append(r)
    }
    try store.insertForBenchmark(batch)
    print("inserted \(count) entries over \(identities) code identities into \(storeRoot)")
}

let args = Array(CommandLine.arguments.dropFirst())
switch args.first {
case "populate" where args.count == 4:
    do {
        try populate(storeRoot: args[1], count: Int(args[2]) ?? 0, identities: max(1, Int(args[3]) ?? 1))
    } catch {
        FileHandle.standardError.write(Data("repro-bench: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
case "s3" where args.count == 3:
    // Upload and download of one file through repro's S3 client (AWS_* settings, e.g. a local
    // S3-compatible server through AWS_ENDPOINT_URL_S3), medians of 3.
    do {
        let (file, bucket) = (args[1], args[2])
        let size = Double((try Hashing.sha256OfFile(atPath: file)).size)
        let s3 = try S3Client(settings: AWSSettings(environment: ProcessInfo.processInfo.environment))
        try s3.createBucket(bucket)
        let up = try time(3) { try s3.upload(file: file, bucket: bucket, key: "bench/object") }
        let back = file + ".back"
        defer { unlink(back) }
        let down = try time(3) { try s3.download(bucket: bucket, key: "bench/object", to: back) }
        print(String(format: "repro S3 client: upload %.2f s (%.0f MB/s), download %.2f s (%.0f MB/s) for %d MiB", up, size / up / 1e6, down,
            size / down / 1e6, Int(size) >> 20))
    } catch {
        FileHandle.standardError.write(Data("repro-bench: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
case "sha256" where args.count == 2:
    break
default:
    FileHandle.standardError.write(Data("usage: repro-bench sha256 FILE | populate STORE N IDENTITIES | s3 FILE BUCKET\n".utf8))
    exit(2)
}
let path = args[1]
let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
do {
    var digest = ""
    let t = try time(5) { digest = try Hashing.sha256OfFile(atPath: path).hash }
    let gbps = Double(size) / t / 1e9
    print(String(format: "sha256 streamed from disk: %.3f s median of 5 for %d MiB = %.2f GB/s (%@)", t, size >> 20, gbps, String(digest.prefix(12))))
} catch {
    FileHandle.standardError.write(Data("repro-bench: \(error)\n".utf8))
    exit(1)
}
