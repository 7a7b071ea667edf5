import Foundation
import Synchronization

/// Stage timings when `REPRO_TRACE=1`: how a user (or the bench) sees where a command's
/// milliseconds go. The library writes nothing itself: the executable says where lines go.
package enum Trace {
    // getenv, not ProcessInfo.environment: that builds a dictionary of the whole environment.
    static let enabled = getenv("REPRO_TRACE").map { String(cString: $0) } == "1"
    static let start = Clock.monotonic()
    private static let sink = Mutex<(@Sendable (String) -> Void)?>(nil)

    /// Where trace lines go (the CLI: stderr). Without one, tracing prints nothing.
    package static func setSink(_ write: @escaping @Sendable (String) -> Void) {
        sink.withLock { $0 = write }
    }

    package static func mark(_ stage: @autoclosure () -> String) {
        guard enabled, let write = sink.withLock({ $0 }) else { return }
        let ms = (Clock.monotonic() - start) * 1000
        write(String(format: "trace: %7.2f ms %6.1f MB  %@", ms, residentMB(), stage()))
    }

    /// Resident memory now (Linux: /proc/self/statm, in pages; elsewhere 0), for the memory targets.
    static func residentMB() -> Double {
        guard let statm = try? FileIO.readAll("/proc/self/statm", limit: 4096),
            let pages = String(decoding: statm, as: UTF8.self).split(separator: " ").dropFirst().first.flatMap({ Double($0) })
        else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / 1_048_576
    }
}
