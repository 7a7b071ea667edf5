import Foundation
import Synchronization

/// Facts about the machine a run executes on.
package enum HostInfo {
    package static let reproVersion = "0.1.0"

    /// The absolute path of the running repro binary (what SLURM jobs and git hooks call).
    package static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    // Read once per process: every run record and task manifest carries them, and a sweep
    // asked the system (uname, /etc/passwd through NSS) several times per point.
    package static let hostname: String = {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "unknown" }
        return String(cString: buf)
    }()

    /// The login name of the user running repro.
    package static let user: String = {
        if let pw = getpwuid(geteuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return ProcessInfo.processInfo.environment["USER"] ?? String(geteuid())
    }()

    /// e.g. `Linux 6.1.0-18-amd64 x86_64`
    package static let os: String = {
        var u = utsname()
        guard uname(&u) == 0 else { return "unknown" }
        func field<T>(_ v: T) -> String {
            withUnsafeBytes(of: v) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
        }
        return "\(field(u.sysname)) \(field(u.release)) \(field(u.machine))"
    }()

    /// A new run id: sortable by start time (to the second), then 40 random bits, so thousands
    /// of runs started in the same second by several processes and hosts do not collide.
    /// `YYYYMMDD-HHMMSS-` then 10 hex digits: milliseconds (3), a per-process counter (3) and
    /// random (4). Ids made later sort later, within a second and within one process's burst.
    package static func newRunId(at t: Double = Clock.now()) -> String {
        let iso = Clock.iso8601(t)  // 2026-11-24T06:32:40.123Z
        // 20261124-063240, by hand: Foundation's replacingOccurrences is slow on every miss's path.
        let compact = String(iso.prefix(19).compactMap { $0 == "-" || $0 == ":" ? nil : $0 == "T" ? "-" : $0 })
        let ms = Int((t - t.rounded(.down)) * 1000) % 1000
        let n = runIdCounter.withLock { c -> Int in
            c = (c + 1) % 4096
            return c
        }
        func hex(_ v: Int, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return compact + "-" + hex(ms, 3) + hex(n, 3) + hex(Int.random(in: 0..<0x10000), 4)
    }
}

private let runIdCounter = Mutex(0)
