import Foundation
import ReproExecution
import ReproKit

/// Where the signal handler writes: set once before the handlers are installed.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// The executable's signal handling for commands that supervise work (run, sweep, verify,
/// wait, exec-task): Ctrl-C, SIGTERM and SIGHUP are caught and handed to ReproKit's
/// `Interrupts`, which stops the simulations and lets the command cancel jobs, record what
/// happened and exit 130. Other commands keep the default (Ctrl-C ends them at once).
enum Signals {
    static func forwardToReproKit() {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        signalPipeWriteEnd = fds[1]
        let readEnd = fds[0]
        // The handler only writes a byte (async-signal-safe); a thread does the rest.
        let handler: @convention(c) (Int32) -> Void = { sig in
            var b = UInt8(truncatingIfNeeded: sig)
            _ = write(signalPipeWriteEnd, &b, 1)
        }
        for s in [SIGINT, SIGTERM, SIGHUP] { signal(s, handler) }
        Thread.detachNewThread {
            var b: UInt8 = 0
            while true {
                let n = read(readEnd, &b, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                Interrupts.shared.deliver(Int32(b))
            }
        }
    }

    /// On Ctrl-C with jobs on a scheduler: ask on a terminal; without one, cancel them.
    static let confirmCancel: CancelConfirmation = { count, backend in
        guard isatty(0) == 1, isatty(2) == 1 else { return true }
        FileHandle.standardError.write(
            Data("\ninterrupted: cancel \(count) \(backend) job(s)? [Y/n] (n leaves them running for `repro wait`) ".utf8))
        guard let line = readLine() else { return true }
        return !line.lowercased().hasPrefix("n")
    }
}
