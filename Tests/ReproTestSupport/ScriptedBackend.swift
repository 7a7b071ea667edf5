import Foundation
import ReproExecution
import ReproKit
import ReproRemote
import ReproStore
import ReproSupport
import Synchronization

/// A backend for the dispatcher's rare paths, fast and deterministic: it wraps a real backend
/// (the local one, in milliseconds) and plays a fate per attempt of each task on top of what
/// that backend reports: lost to the machine once the attempt ends (the scheduler's NODE_FAIL),
/// or vanished (the scheduler no longer knows the job and no manifest came). What a real
/// scheduler does on those paths is tested against the real ones by the conformance suite;
/// this one makes the dispatcher's side of them cheap to test exhaustively.
public final class ScriptedBackend: Backend {
    public enum Fate: Sendable, Equatable {
        /// Whatever the wrapped backend says.
        case asReported
        /// Done on the wrapped backend, reported as lost (phase `.retry`) with this state.
        case lost(String)
        /// Done on the wrapped backend, reported as finished without a manifest: the
        /// scheduler forgot the job.
        case vanished
    }

    public let inner: Backend
    /// The fate of attempt N (0: the first submission) of every task; attempts past the list
    /// are `.asReported`.
    public let fates: [Fate]
    private let log = Mutex<[(runId: String, attempt: Int, fate: Fate)]>([])
    /// What was submitted, by run id: a backend that cannot rebuild a task (the local one runs
    /// tasks in process, with no task file) is handed it again.
    private let submitted = Mutex<[String: TaskSpec]>([:])

    /// What the first polls throw, in order (a throttled or unreachable service); the polls
    /// after them ask the wrapped backend.
    private let pollErrors: Mutex<[RemoteError]>
    private let cancels = Mutex(0)
    /// How many times `cancel` was called.
    public var cancelCalls: Int { cancels.withLock { $0 } }

    public init(_ inner: Backend, fates: [Fate], pollErrors: [RemoteError] = []) {
        self.pollErrors = Mutex(pollErrors)
        self.inner = inner
        self.fates = fates
    }

    /// Every fate that was played: run id, attempt, fate (`.asReported` not listed).
    public var played: [(runId: String, attempt: Int, fate: Fate)] { log.withLock { $0 } }

    public var name: String { inner.name }
    public var type: String { inner.type }
    public var capabilities: BackendCapabilities { inner.capabilities }
    public var taskRoot: String { inner.taskRoot }
    public func stage(_ tasks: [TaskSpec]) throws -> [String] { try inner.stage(tasks) }
    public func submit(_ tasks: [TaskSpec], refs: [String], resources: [String: JSONValue]) throws -> [TaskHandle] {
        submitted.withLock { for t in tasks { $0[t.runId] = t } }
        return try inner.submit(tasks, refs: refs, resources: resources)
    }

    public func poll(_ handles: [TaskHandle]) throws -> [String: TaskStatus] {
        if let e = pollErrors.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { throw e }
        var out = try inner.poll(handles)
        for h in handles where out[h.runId]?.phase == .done {
            let fate = h.attempt < fates.count ? fates[h.attempt] : .asReported
            switch fate {
            case .asReported: continue
            case .lost(let state):
                out[h.runId] = TaskStatus(phase: .retry, schedulerState: state)
            case .vanished:
                var st = TaskStatus(phase: .done, schedulerState: "UNKNOWN")
                st.failure = (.failed, "the scheduler no longer knows job \(h.jobId ?? h.runId) and no manifest came", nil)
                out[h.runId] = st
            }
            log.withLock { $0.append((h.runId, h.attempt, fate)) }
        }
        return out
    }

    public func cancel(_ handles: [TaskHandle]) throws {
        cancels.withLock { $0 += 1 }
        try inner.cancel(handles)
    }
    public func waitForChange(timeout: Double) { inner.waitForChange(timeout: timeout) }
    public func collect(_ handle: TaskHandle, _ status: TaskStatus) throws -> CollectedTask { try inner.collect(handle, status) }
    public func resubmit(_ handle: TaskHandle, resources: [String: JSONValue]) throws -> TaskHandle? {
        if let again = try inner.resubmit(handle, resources: resources) { return again }
        guard let task = submitted.withLock({ $0[handle.runId] }) else { return nil }
        // A fresh start in the same folder, as a scheduler's resubmission gives: no manifest,
        // an empty out/, and the old attempt's status forgotten.
        inner.forget(handle)
        unlink(task.manifestPath)
        FileIO.removeTree(task.outdir)
        try FileIO.makeDirectory(task.outdir)
        var h = try inner.submit([task], refs: [handle.ref], resources: resources).first
        h?.attempt = handle.attempt + 1
        return h
    }
    public func release(_ handle: TaskHandle) { inner.release(handle) }
    public func forget(_ handle: TaskHandle) { inner.forget(handle) }
}
