import Foundation

/// Stage timings on stderr when `REPRO_TRACE=1`: how a user (or the bench) sees where a
/// command's milliseconds go.
public enum Trace {
    static let enabled = ProcessInfo.processInfo.environment["REPRO_TRACE"] == "1"
    static let start = Clock.monotonic()

    public static func mark(_ stage: @autoclosure () -> String) {
        guard enabled else { return }
        let ms = (Clock.monotonic() - start) * 1000
        FileHandle.standardError.write(Data(String(format: "trace: %7.2f ms  %@\n", ms, stage()).utf8))
    }
}
