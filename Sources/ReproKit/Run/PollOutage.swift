import Foundation
import ReproExecution
import ReproRemote
import ReproSupport

/// Polling through an outage: a throttled, failing or unreachable service is asked again with
/// capped exponential backoff and full jitter (the AWS SDKs' standard retry mode: up to 20 s),
/// or after what its `Retry-After` asked, until the outage has lasted `limit` seconds.
struct PollOutage {
    let limit: Double
    /// The first backoff's ceiling (1 s, as the SDKs; tests make it shorter).
    let base: Double
    static let maxBackoff = 20.0
    private(set) var since: Double?
    private(set) var failures = 0
    /// The pause before the next poll.
    private(set) var pause = 0.0
    private var lastLogged = -Double.infinity

    init(limit: Double, base: Double = 1) {
        self.limit = limit
        self.base = base
    }

    var active: Bool { since != nil }
    var lasted: Double { since.map { Clock.monotonic() - $0 } ?? 0 }

    /// One more failed poll: the pause before the next, or nil when the outage is past the limit.
    mutating func next(_ e: RemoteError) -> Double? {
        let now = Clock.monotonic()
        let start = since ?? now
        since = start
        failures += 1
        if now - start >= limit { return nil }
        let backoff = Double.random(in: 0...1) * min(PollOutage.maxBackoff, base * pow(2, Double(min(failures - 1, 10))))
        pause = min(max(backoff, 0.05, min(e.retryAfter ?? 0, 300)), max(0.05, limit - (now - start)))
        return pause
    }

    /// Whether to say so: the first failure, then once a minute.
    mutating func shouldLog() -> Bool {
        let now = Clock.monotonic()
        guard now - lastLogged >= 60 else { return false }
        lastLogged = now
        return true
    }

    /// Polls answer again: how long the outage lasted, or nil when there was none.
    mutating func ended() -> Double? {
        guard since != nil else { return nil }
        let d = lasted
        since = nil
        failures = 0
        lastLogged = -.infinity
        return d
    }

    /// Waits out the pause in short steps, so Ctrl-C is seen at once.
    func sleep() {
        let end = Clock.monotonic() + pause
        while Clock.monotonic() < end, Interrupts.shared.received == nil { usleep(100_000) }
    }
}
