import Foundation

/// An error repro reports to a user: a message that says what is wrong, where, and what to do,
/// plus the process exit code the CLI should use.
public protocol ReproError: Error, CustomStringConvertible, Sendable {
    /// 1 for a failed simulation or failed check, 2 for usage, config and environment errors,
    /// 4 for a store that cannot be read or written, 5 for a lookup that found nothing, 6 for a
    /// remote service (object storage, a REST scheduler) that cannot be reached or refuses.
    var exitCode: Int32 { get }
}

/// A spec, override or command-line value that cannot be used.
public struct ConfigError: ReproError {
    /// The file the value at fault came from (or `--set`, `command line`); nil when none.
    public var file: String?
    public var line: Int?
    /// The key path of the value at fault (`backends.aws.job_queue`), when the error is about one.
    public var keyPath: String?
    /// What is wrong and how to fix it.
    public var problem: String
    public var exitCode: Int32 { 2 }
    public var description: String { message }

    /// A message with no place in a file.
    public init(_ message: String) { problem = message }

    /// An error about a value written at `file:line` (either may be unknown).
    package init(file: String?, line: Int?, key: String? = nil, _ problem: String) {
        self.file = file
        self.line = line
        keyPath = key
        self.problem = problem
    }

    /// An error about a value whose place is known as text: "FILE:LINE", or a name such as
    /// `--set` or `command line`.
    package init(at place: String, key: String? = nil, _ problem: String) {
        if let colon = place.lastIndex(of: ":"), let n = Int(place[place.index(after: colon)...]) {
            self.init(file: String(place[..<colon]), line: n, key: key, problem)
        } else {
            self.init(file: place.isEmpty ? nil : place, line: nil, key: key, problem)
        }
    }

    /// "FILE:LINE: KEY PROBLEM", each part where known.
    package var message: String {
        var place = file ?? ""
        if let line { place += (place.isEmpty ? "line " : ":") + String(line) }
        let what = keyPath.map { $0 + " " + problem } ?? problem
        return place.isEmpty ? what : place + ": " + what
    }
}

/// The environment repro runs in is not usable (not a git repository, dirty code, ...).
public struct EnvironmentError: ReproError {
    package let message: String
    public var exitCode: Int32 { 2 }
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// The store could not be read or written (a corrupt blob, a malformed database, a full disk,
/// a read-only store). Exit code 4, so scripts can tell it from a failed simulation (1).
public struct StoreError: ReproError {
    package let message: String
    /// SQLite's result code, when SQLite refused.
    package var sqliteCode: Int32?
    /// errno, when a system call refused.
    package var posixCode: Int32?
    public var exitCode: Int32 { 4 }
    public var description: String { message }
    public init(_ message: String, sqliteCode: Int32? = nil, posixCode: Int32? = nil) {
        self.message = message
        self.sqliteCode = sqliteCode
        self.posixCode = posixCode
    }
    /// `what` failed with the current errno: its text in the message, its code kept.
    package static func posix(_ what: String) -> StoreError {
        let e = errno
        return StoreError("\(what): \(String(cString: strerror(e)))", posixCode: e)
    }
    /// The disk (or the user's quota) is full: SQLITE_FULL, ENOSPC or EDQUOT.
    package var isDiskFull: Bool {
        sqliteCode.map { $0 & 0xFF == 13 } == true || posixCode == ENOSPC || posixCode == EDQUOT
    }
    /// Another connection held the lock past the busy timeout (SQLITE_BUSY or SQLITE_LOCKED).
    package var isBusy: Bool { sqliteCode.map { $0 & 0xFF == 5 || $0 & 0xFF == 6 } ?? false }
}

/// Something a lookup asked for does not exist (an unknown run id, say). Exit code 5, so a
/// script can tell "no such run" from "the simulation failed" (1).
package struct NotFoundError: ReproError {
    package let message: String
    package var exitCode: Int32 { 5 }
    package var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// The simulation could not be started or supervised, or something failed that no other area
/// owns; `cause` keeps the original error (never flattened to its text only).
public struct ExecutionError: ReproError {
    package let message: String
    package var cause: (any Error)?
    /// 1 when running failed; 2 when this machine lacks what running needs (a program not
    /// installed): an environment error, not a failed simulation.
    public let exitCode: Int32
    public var description: String { message }
    public init(_ message: String, cause: (any Error)? = nil) {
        self.message = message
        self.cause = cause
        exitCode = 1
    }

    /// What this machine lacks (a helper program that is not installed): exit 2.
    package static func missing(_ message: String) -> ExecutionError { ExecutionError(message, exitCode: 2) }

    init(_ message: String, exitCode: Int32) {
        self.message = message
        cause = nil
        self.exitCode = exitCode
    }
}

/// Runs `body`, turning whatever it throws into a `ReproErrorBox` (keeping a repro error's
/// message and exit code), for package entry points with a typed `throws`.
package func boxingErrors<T>(_ body: () throws -> T) throws(ReproErrorBox) -> T {
    do {
        return try body()
    } catch let e as ReproErrorBox {
        throw e
    } catch let e as ReproError {
        throw ReproErrorBox(e)
    } catch {
        throw ReproErrorBox(ExecutionError("\(error)", cause: error))
    }
}

/// Carries any `ReproError` through a typed `throws`, keeping its message and exit code.
public struct ReproErrorBox: ReproError {
    package let inner: any ReproError
    public init(_ inner: any ReproError) {
        if let box = inner as? ReproErrorBox { self.inner = box.inner } else { self.inner = inner }
    }
    public var exitCode: Int32 { inner.exitCode }
    public var description: String { inner.description }
}
