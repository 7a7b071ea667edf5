import Dispatch
import Foundation

/// `(0..<n).map(body)` on every core, in order. The error thrown is the one of the lowest
/// failing index, as a loop in order would throw. Fewer than `perThread` items per core run on
/// the calling thread (starting threads would cost more than the work).
package enum ParallelMap {
    package static func map<T, E: Error>(_ n: Int, perThread: Int = 256, _ body: @Sendable (Int) throws(E) -> T) throws(E) -> [T] {
        let width = min(ProcessInfo.processInfo.activeProcessorCount, max(1, n / perThread))
        var out: [T] = []
        out.reserveCapacity(n)
        if width == 1 {
            for i in 0..<n { out.append(try body(i)) }
            return out
        }
        // In blocks, so the results are held twice (slots, then `out`) for one block only: a
        // large sweep's specs run to tens of MB.
        var start = 0
        while start < n {
            let end = min(n, start + block)
            let slots = Slots<Result<T, E>>(end - start)
            DispatchQueue.concurrentPerform(iterations: width) { [start] part in
                var i = start + part
                while i < end {
                    slots.buffer[i - start] = Result { () throws(E) -> T in try body(i) }
                    i += width
                }
            }
            // Every index was written by exactly one thread before concurrentPerform returned.
            for i in 0..<(end - start) {
                if let r = slots.buffer[i] { out.append(try r.get()) }
            }
            start = end
        }
        return out
    }

    package static let block = 2048

    /// Result slots written by several threads, each index by exactly one of them.
    private final class Slots<Element>: @unchecked Sendable {
        let buffer: UnsafeMutableBufferPointer<Element?>
        init(_ n: Int) {
            buffer = .allocate(capacity: n)
            buffer.initialize(repeating: nil)
        }
        deinit {
            buffer.deinitialize()
            buffer.deallocate()
        }
    }
}

/// A value computed on another thread while this one does other work; `wait()` returns it
/// (or throws its error). The semaphore orders the write of `result` before its read.
package final class Background<T: Sendable, E: Error>: @unchecked Sendable {
    private var result: Result<T, E>?
    private let done = DispatchSemaphore(value: 0)

    public init(_ body: @escaping @Sendable () throws(E) -> T) {
        DispatchQueue.global().async {
            self.result = Result { () throws(E) -> T in try body() }
            self.done.signal()
        }
    }

    package func wait() throws(E) -> T {
        done.wait()
        done.signal()  // a second wait() returns at once
        guard let result else { preconditionFailure("Background finished without a result") }
        return try result.get()
    }
}
