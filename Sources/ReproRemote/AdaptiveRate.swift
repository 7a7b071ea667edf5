import Foundation
import ReproSupport
import Synchronization

/// Client-side rate limiting as the AWS SDKs' adaptive retry mode does it: a token bucket whose
/// rate starts at the service's documented limit (SubmitJob: 50 a second per account), is cut
/// to 70% at each throttling answer (CUBIC's multiplicative decrease) and grows back by 10% a
/// second of calls that pass, up to that limit. Shared by every thread of one process.
package final class AdaptiveRate: Sendable {
    struct State {
        var rate: Double
        var tokens: Double
        var last: Double
    }
    private let state: Mutex<State>
    package let ceiling: Double
    /// The slowest it goes, so a long throttling spell never stops it.
    static let floor = 0.5
    private let clock: @Sendable () -> Double
    private let sleep: @Sendable (Double) -> Void

    package init(
        perSecond: Double, clock: @escaping @Sendable () -> Double = { Clock.monotonic() },
        sleep: @escaping @Sendable (Double) -> Void = { usleep(UInt32(min($0, 60) * 1_000_000)) }
    ) {
        ceiling = perSecond
        self.clock = clock
        self.sleep = sleep
        // A second's worth to start with: a burst as big as the limit allows.
        state = Mutex(State(rate: perSecond, tokens: perSecond, last: clock()))
    }

    package var rate: Double { state.withLock { $0.rate } }

    /// Waits for a token.
    package func acquire() {
        while true {
            let wait: Double = state.withLock { s in
                let now = clock()
                s.tokens = min(max(1, s.rate), s.tokens + (now - s.last) * s.rate)
                s.last = now
                // Within rounding of a whole token counts as one (a wait of 1e-18 s would not move a clock).
                if s.tokens >= 1 - 1e-9 {
                    s.tokens = max(0, s.tokens - 1)
                    return 0
                }
                return max(1e-6, (1 - s.tokens) / s.rate)
            }
            if wait == 0 { return }
            sleep(wait)
        }
    }

    /// The service said to slow down.
    package func throttled() {
        state.withLock { s in
            s.rate = max(AdaptiveRate.floor, s.rate * 0.7)
            s.tokens = min(s.tokens, 0)
        }
    }

    /// A call went through.
    package func succeeded() {
        state.withLock { s in s.rate = min(ceiling, s.rate * (1 + 0.1 / max(1, s.rate))) }
    }
}
