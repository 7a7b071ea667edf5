import Foundation
import Logging
import ReproKit
import ReproSupport

/// How ReproKit's log messages reach a person: the message alone, one line on stderr, as the
/// CLI has always printed progress (no timestamps or labels: this is a terminal tool's output,
/// not a service log). `REPRO_LOG_LEVEL` (trace, debug, info, notice, warning, error) chooses
/// how much; the default shows notices and above.
struct StderrLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level
    var metadataProvider: Logger.MetadataProvider?

    init(level: Logger.Level) { logLevel = level }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let prefix = event.level >= .warning ? "\(event.level): " : ""
        FileHandle.standardError.write(Data((prefix + Terminal.clean(event.message.description) + "\n").utf8))
    }

    /// Routes every Logger of this process here (called once, first thing in main).
    static func bootstrap(environment: [String: String]) {
        let level = environment["REPRO_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .notice
        LoggingSystem.bootstrap { _ in StderrLogHandler(level: level) }
    }
}
