import Foundation
import Logging
import ReproExecution
import ReproSupport
import ReproGit
import ReproStore

/// `repro status` and `repro wait`: picks up runs submitted by earlier repro processes, polls
/// their backends and ingests those that finished (exactly once, whoever sees them first).
public enum BackendRuns {
    public struct Row: Sendable {
        public var runId: String
        public var name: String
        public var backend: String
        public var jobId: String?
        public var state: String
        public var node: String?
        public var outputsDir: String?
        public var json: JSONValue {
            [
                "run_id": .string(runId), "name": .string(name), "backend": .string(backend), "job_id": jobId.json,
                "state": .string(state), "node": node.json,
            ]
        }
    }

    public static func refresh(
        _ runs: [RunRecord], store: Store, repo: GitRepository, wait: Bool, logger: Logger = Logger(label: "repro.backends"),
        confirmCancel: @escaping CancelConfirmation = { _, _ in true }
    )
        throws -> [Row]
    {
        let log: (String) -> Void = { logger.notice("\($0)") }
        try Recovery.markDeadRunsInterrupted(store)
        var rows: [Row] = []
        let byBackend = Dictionary(grouping: runs, by: \.backend)
        let config = try StoreConfig.load(storeRoot: store.root, repoRoot: repo.workdir)
        for (name, group) in byBackend.sorted(by: { $0.key < $1.key }) {
            let live = group.filter {
                $0.status == .running && $0.taskRef != nil && Backends.outlivesSubmitter($0)
            }
            for r in group where !live.contains(where: { $0.runId == r.runId }) {
                rows.append(Row(runId: r.runId, name: r.name, backend: r.backend, jobId: r.jobId, state: r.status.rawValue, node: r.host))
            }
            guard !live.isEmpty else { continue }
            let backend = try Backends.make(
                name, store: store, repoRoot: repo.workdir, jobs: 1, environment: ProcessInfo.processInfo.environment, config: config)
            let d = Dispatcher(
                store: store, backend: backend, log: log, maxRetries: config.maxRetries(backend: name), outageLimit: config.orchestration.outageLimit,
                resultsDir: { r in ResultsDir.path(repoRoot: repo.workdir, name: r.name, key: r.key) })
            d.announceStates = wait
            d.showFailureTail = wait
            d.price = config.price(backend: name)
            d.remember(live)
            d.confirmCancel = { n in confirmCancel(n, name) }
            let handles = live.map { TaskHandle(runId: $0.runId, ref: $0.taskRef ?? "", jobId: $0.jobId, attempt: $0.resubmissions) }
            var finished: [String: Dispatcher.Finished] = [:]
            if wait {
                try d.drive(handles, onFinished: { finished[$0.record.runId] = $0 })
            } else {
                let statuses = try backend.poll(handles)
                for h in handles {
                    guard let st = statuses[h.runId] else { continue }
                    if st.phase == .done, let f = try d.ingest(h, st) { finished[h.runId] = f }
                }
                for r in live where finished[r.runId] == nil {
                    let st = statuses[r.runId]
                    rows.append(
                        Row(runId: r.runId, name: r.name, backend: name, jobId: r.jobId, state: st?.schedulerState ?? st?.phase.rawValue ?? "?",
                            node: st?.node))
                }
            }
            for (id, f) in finished {
                rows.append(
                    Row(runId: id, name: f.record.name, backend: name, jobId: f.record.jobId, state: f.record.status.rawValue,
                        node: f.record.host, outputsDir: f.outputsDir))
            }
            if wait {
                for r in live where finished[r.runId] == nil {
                    guard let now = try store.run(id: r.runId) else { continue }
                    rows.append(Row(runId: r.runId, name: r.name, backend: name, jobId: now.jobId, state: now.status.rawValue, node: now.host))
                }
            }
        }
        return rows
    }
}
