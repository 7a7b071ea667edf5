import Foundation
import Synchronization

/// Blocking work (network transfers) spread over a few threads.
package enum Parallel {
    /// Calls `body(i)` for every `i` in `0..<count` on at most `width` threads and waits for all.
    /// After the first error no new item starts; that error is rethrown. Threads, not the
    /// dispatch pool: the work blocks on the network, not the CPU.
    package static func forEach<E: Error>(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) throws(E) -> Void) throws(E) {
        guard count > 0 else { return }
        let next = Atomic<Int>(0)
        let failure = Mutex<E?>(nil)
        let group = DispatchGroup()
        let threads = max(1, min(width, count))
        if threads == 1 {
            for i in 0..<count { try body(i) }
            return
        }
        for _ in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                while failure.withLock({ $0 == nil }) {
                    let i = next.add(1, ordering: .relaxed).oldValue
                    guard i < count else { return }
                    do throws(E) { try body(i) } catch {
                        failure.withLock { if $0 == nil { $0 = error } }
                    }
                }
            }
        }
        group.wait()
        if let e = failure.withLock({ $0 }) { throw e }
    }
}
