import Foundation
import Synchronization

/// Ctrl-C, SIGTERM and SIGHUP for a repro that supervises simulations. The executable owns
/// the signal handlers and calls `deliver` when one arrives; from then on every registered
/// process group is stopped (SIGTERM, then SIGKILL after a grace period) and the signal is
/// remembered, so the code waiting on those processes records them as interrupted and the
/// command can clean up (cancel scheduler jobs, write its summary) before it exits 130.
/// A library user that installs no handler simply keeps the default signal behaviour.
public final class Interrupts: Sendable {
    public static let shared = Interrupts()

    private struct State {
        var signal: Int32?
        /// A few at a time (the sweep's jobs): an array, which also spares the first
        /// registration a Set's run-time type instantiation on every miss.
        var groups: [Int32] = []
    }
    private let state = Mutex(State())
    public let killGrace: Double = 3

    /// The signal received so far, if any.
    public var received: Int32? { state.withLock { $0.signal } }

    /// Called by the executable's signal handling (not from the handler itself) when a signal
    /// arrives: stops the registered process groups and remembers the signal.
    public func deliver(_ sig: Int32) {
        let groups = state.withLock { s -> [Int32] in
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
            if !s.groups.contains(pgid) { s.groups.append(pgid) }
            return s.signal != nil
        }
        if already { kill(-pgid, SIGTERM) }
    }

    public func unregister(group pgid: Int32) {
        state.withLock { $0.groups.removeAll { $0 == pgid } }
    }
}
