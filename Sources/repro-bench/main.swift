import Foundation
import ReproKit

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

let args = CommandLine.arguments.dropFirst()
guard args.count == 2, args.first == "sha256", let path = args.last else {
    FileHandle.standardError.write(Data("usage: repro-bench sha256 FILE\n".utf8))
    exit(2)
}
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
