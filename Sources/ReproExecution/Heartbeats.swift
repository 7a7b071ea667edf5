import Foundation
import Synchronization
import ReproSupport
import ReproRemote

/// Tells a running task from a dead one its scheduler has not noticed yet (a node lost, a spot
/// instance reclaimed: the job can stay RUNNING for many minutes). The worker rewrites a small
/// heartbeat object while its task runs; the submitter looks at it at most once per interval
/// per task, and a task whose heartbeat has not changed for `limit` is lost.
///
/// A task counts only once a first heartbeat was seen: a worker of an older repro writes none,
/// and killing its healthy tasks would be worse than waiting for the scheduler.
final class HeartbeatWatch {
    let interval: Double
    let limit: Double
    private struct Seen {
        var tag: String?
        var changed: Double
        var checked: Double
    }
    private var seen: [String: Seen] = [:]

    init(interval: Double, limit: Double) {
        self.interval = interval
        self.limit = limit
    }

    /// For a task its scheduler calls running: how long its heartbeat has been silent when that
    /// is past the limit, else nil. Storage that cannot be read says nothing either way.
    func silence(_ h: TaskHandle, staging: RemoteStaging) -> Double? {
        let id = h.runId + "/" + String(h.attempt)
        let now = Clock.monotonic()
        var s = seen[id] ?? Seen(tag: nil, changed: now, checked: -Double.infinity)
        defer { seen[id] = s }
        guard now - s.checked >= min(interval, limit / 2) else { return nil }
        s.checked = now
        let tag: String?
        do { tag = try staging.heartbeatTag(runId: h.runId, attempt: h.attempt) } catch { return nil }
        if let tag, tag != s.tag {
            s.tag = tag
            s.changed = now
        }
        guard s.tag != nil, now - s.changed > limit else { return nil }
        return now - s.changed
    }

    func forget(_ h: TaskHandle) { seen.removeValue(forKey: h.runId + "/" + String(h.attempt)) }

    /// The status of a task found silent: lost, to be submitted again (the caller has cancelled
    /// its job, so the old worker cannot finish alongside the new one).
    func lost(_ h: TaskHandle, silentFor seconds: Double, node: String?) -> TaskStatus {
        forget(h)
        return TaskStatus(
            phase: .retry, schedulerState: "RUNNING but no heartbeat for \(DurationText.format(seconds)) (limit \(DurationText.format(limit)))",
            node: node)
    }
}

/// The worker's side: writes the heartbeat object now and then every `interval` seconds on a
/// thread of its own until stopped.
final class HeartbeatSender: Sendable {
    private let stopped = Mutex(false)

    static func start(url: String, interval: Double, runId: String) -> HeartbeatSender {
        let sender = HeartbeatSender()
        let step = max(0.05, min(interval, 0.25))
        Thread.detachNewThread {
            let http = HTTPClient()
            var beat = 0
            while !sender.isStopped {
                beat += 1
                let body: JSONValue = ["run_id": .string(runId), "beat": .int(Int64(beat)), "host": .string(HostInfo.hostname), "at": .string(Clock.iso8601(Clock.now()))]
                // One try each: a missed beat is made up by the next, and the limit spans many.
                _ = try? PresignedTransfer.put(url, bytes: Array(body.canonical.utf8), http: http, retry: RetryPolicy(attempts: 1))
                let until = Clock.monotonic() + interval
                while !sender.isStopped && Clock.monotonic() < until { Thread.sleep(forTimeInterval: step) }
            }
        }
        return sender
    }

    private var isStopped: Bool { stopped.withLock { $0 } }

    func stop() { stopped.withLock { $0 = true } }
}
