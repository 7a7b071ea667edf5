import Foundation
import Synchronization
import ReproSupport
import ReproStore

/// This machine: a bounded pool of worker threads, each running tasks in process through
/// `TaskExecutor` (the same code `repro exec-task` runs), `jobs` at a time.
public final class LocalBackend: SharedFolderBackend, Sendable {
    public let name: String
    public var type: String { Self.typeName }
    public var capabilities: BackendCapabilities { Self.traits }
    public let taskRoot: String
    public let needsTaskFile = false
    let environment: [String: String]
    let jobs: Int

    private struct State {
        var queue: [TaskSpec] = []
        var running: [String: Int32] = [:]  // run id -> pid (0 until spawned)
        var done: [String: TaskManifest] = [:]
        var cancelled: Set<String> = []
        var workers = 0
    }
    private let state = Mutex(State())
    private let changed = DispatchSemaphore(value: 0)

    public init(name: String = LocalBackend.typeName, store: Store, jobs: Int, environment: [String: String]) {
        self.name = name
        self.jobs = max(1, jobs)
        self.environment = environment
        taskRoot = store.tmpDir
    }

    public func submit(_ tasks: [TaskSpec], refs: [String], resources: [String: JSONValue]) throws -> [TaskHandle] {
        let toStart = state.withLock { s -> Int in
            s.queue.append(contentsOf: tasks)
            let want = min(jobs, s.queue.count + s.running.count) - s.workers
            s.workers += max(0, want)
            return max(0, want)
        }
        var started = 0
        var failure: Int32 = 0
        for _ in 0..<toStart {
            let rc = DetachedThread.start { [self] in work() }
            if rc == 0 { started += 1 } else { failure = rc }
        }
        if started < toStart {
            let none = state.withLock { s -> Bool in
                s.workers -= toStart - started
                return s.workers == 0
            }
            // Fewer workers still drain the queue; none would leave the tasks waiting forever.
            if none { throw ExecutionError("cannot start a worker thread (\(String(cString: strerror(failure)))); the machine is out of threads or memory") }
        }
        return tasks.map { TaskHandle(runId: $0.runId, ref: $0.taskDir, jobId: nil) }
    }

    private func work() {
        while true {
            let next = state.withLock { s -> TaskSpec? in
                // After Ctrl-C nothing new starts: what is queued is cancelled, never begun
                // (a task started now would only be stopped at once, and recorded as a run).
                if Interrupts.shared.received != nil, !s.queue.isEmpty {
                    s.cancelled.formUnion(s.queue.map(\.runId))
                    s.queue.removeAll()
                }
                guard !s.queue.isEmpty else {
                    s.workers -= 1
                    return nil
                }
                let t = s.queue.removeFirst()
                s.running[t.runId] = 0
                return t
            }
            guard let task = next else { return }
            Trace.mark("local task starting")
            let manifest = TaskExecutor.execute(task, machine: environment, writeManifest: false, hashExecutable: false)
            Trace.mark("local task finished")
            state.withLock { s in
                s.running.removeValue(forKey: task.runId)
                s.done[task.runId] = manifest
            }
            changed.signal()
        }
    }

    public func poll(_ handles: [TaskHandle]) throws -> [String: TaskStatus] {
        state.withLock { s in
            var out: [String: TaskStatus] = [:]
            for h in handles {
                if let m = s.done[h.runId] {
                    out[h.runId] = TaskStatus(phase: .done, node: m.host, manifest: m)
                } else if s.cancelled.contains(h.runId) {
                    var st = TaskStatus(phase: .done, schedulerState: "CANCELLED")
                    st.failure = (.interrupted, "cancelled before it started", nil)
                    st.neverStarted = true
                    out[h.runId] = st
                } else if s.running[h.runId] != nil {
                    out[h.runId] = TaskStatus(phase: .running)
                } else {
                    out[h.runId] = TaskStatus(phase: .queued)
                }
            }
            return out
        }
    }

    /// Queued tasks are dropped; running ones are stopped through their process group when
    /// repro itself got the signal (Interrupts), otherwise left to finish.
    public func cancel(_ handles: [TaskHandle]) throws {
        let ids = Set(handles.map(\.runId))
        state.withLock { s in
            let dropped = s.queue.filter { ids.contains($0.runId) }.map(\.runId)
            s.queue.removeAll { ids.contains($0.runId) }
            s.cancelled.formUnion(dropped)
        }
        changed.signal()
    }

    public func forget(_ handle: TaskHandle) {
        state.withLock { _ = $0.done.removeValue(forKey: handle.runId) }
    }

    public func waitForChange(timeout: Double) {
        _ = changed.wait(timeout: .now() + timeout)
    }
}
