#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A plain detached POSIX thread. Foundation's `Thread` sets up an object, a run-loop slot
/// and thread-local storage first: a few hundred microseconds before the body runs, which a
/// one-task run waits for on its critical path.
package enum DetachedThread {
    private final class Body {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }

    /// Starts `body` on a new thread; returns 0, or pthread_create's error (body not run).
    @discardableResult
    package static func start(_ body: @escaping @Sendable () -> Void) -> Int32 {
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        #if canImport(Glibc)
            var tid = pthread_t()
        #else
            var tid: pthread_t?
        #endif
        let rc = pthread_create(&tid, nil, { arg in
            guard let arg else { return nil }
            Unmanaged<Body>.fromOpaque(arg).takeRetainedValue().run()
            return nil
        }, box)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            return rc
        }
        #if canImport(Glibc)
            pthread_detach(tid)
        #else
            if let tid { pthread_detach(tid) }
        #endif
        return 0
    }
}
