import Foundation
import Synchronization

/// Where the signal handler writes. Set once, read from a signal handler, so it cannot live
/// behind a lock.
nonisolated(unsafe) private var interruptPipeWriteEnd: Int32 = -1

/// Ctrl-C, SIGTERM and SIGHUP for a repro that supervises simulations: once installed, a signal
/// stops every registered process group (SIGTERM, then SIGKILL after a grace period) and is
/// remembered, so the code waiting on those processes records them as interrupted and the
/// command can clean up (cancel scheduler jobs, write its summary) before it exits 130.
public final class Interrupts: Sendable {
    public static let shared = Interrupts()

    private struct State {
        var installed = false
        var signal: Int32?
        var groups: Set<Int32> = []
    }
    private let state = Mutex(State())
    public let killGrace: Double = 3

    /// The signal received since installation, if any.
    public var received: Int32? { state.withLock { $0.signal } }

    /// Installs the handlers (once per process).
    public func install() {
        let first = state.withLock { s -> Bool in
            if s.installed { return false }
            s.installed = true
            return true
        }
        guard first else { return }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        interruptPipeWriteEnd = fds[1]
        let readEnd = fds[0]
        let handler: @convention(c) (Int32) -> Void = { sig in
            var b = UInt8(truncatingIfNeeded: sig)
            _ = write(interruptPipeWriteEnd, &b, 1)
        }
        for s in [SIGINT, SIGTERM, SIGHUP] { signal(s, handler) }
        Thread.detachNewThread { [self] in
            var b: UInt8 = 0
            while true {
                let n = read(readEnd, &b, 1)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                self.deliver(Int32(b))
            }
        }
    }

    private func deliver(_ sig: Int32) {
        let groups = state.withLock { s -> Set<Int32> in
            if s.signal == nil { s.signal = sig }
            return s.groups
        }
        for g in groups { kill(-g, SIGTERM) }
        let grace = killGrace
        Thread.detachNewThread { [self] in
            usleep(UInt32(grace * 1_000_000))
            for g in state.withLock({ $0.groups }) { kill(-g, SIGKILL) }
        }
    }

    /// Tracks a process group to stop on a signal. If a signal already came, stops it at once.
    public func register(group pgid: Int32) {
        let already = state.withLock { s -> Bool in
            s.groups.insert(pgid)
            return s.signal != nil
        }
        if already { kill(-pgid, SIGTERM) }
    }

    public func unregister(group pgid: Int32) {
        _ = state.withLock { $0.groups.remove(pgid) }
    }
}
