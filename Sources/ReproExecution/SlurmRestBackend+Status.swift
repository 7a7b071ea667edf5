import Foundation
import ReproSupport

/// How a slurm-rest task that left its queue is read: its manifest, or what the scheduler
/// says about a task without one.
extension SlurmRestBackend {
    /// A task whose manifest is in the bucket; the scheduler's reason wins when it stopped it,
    /// and a manifest claiming success for a job SLURM calls failed is not believed.
    func finished(job: SlurmREST.Job?, manifest: TaskManifest) -> TaskStatus {
        var m = manifest
        if let job {
            let (_, final, reason) = SlurmStates.phase(job.state)
            if let final, final != .succeeded, job.state.uppercased() != "FAILED" {
                m.status = final == .interrupted ? .interrupted : .failed
                m.message = reason
            } else if job.state.uppercased() == "FAILED", m.status == .succeeded {
                m.status = .failed
                m.message = "SLURM says job \(job.id) FAILED\(job.exitCode.map { " (exit \($0))" } ?? "") but its manifest says it succeeded; "
                    + "the two disagree, so nothing from it is trusted"
            }
        }
        return TaskStatus(phase: .done, schedulerState: job?.state ?? "DONE", node: job?.node ?? (m.host.isEmpty ? nil : m.host), manifest: m)
    }

    /// A task the scheduler calls finished (or has forgotten) and that left no manifest.
    func withoutManifest(_ h: TaskHandle, job: SlurmREST.Job?) -> TaskStatus {
        let id = h.jobId ?? "?"
        // The job script said why the worker never started: no manifest is coming.
        if let job, job.comment.hasPrefix(SlurmRestBackend.workerCommentPrefix), SlurmStates.phase(job.state).1 != nil {
            var st = TaskStatus(phase: .done, schedulerState: job.state, node: job.node)
            let why = Terminal.clean(String(job.comment.dropFirst(SlurmRestBackend.workerCommentPrefix.count)), keepNewlines: false)
            st.failure = (
                .failed,
                "the worker did not start on \(job.node.isEmpty ? "the node" : job.node): \(why). The repro at repro_path must run on the "
                    + "nodes' OS (see 'repro on the nodes' in docs/backends.md; `repro backends --probe \(name)` shows what a node has)",
                job.exitCode
            )
            return st
        }
        let where_ = "\(staging.location.scheme)://\(staging.location.bucket)/\(staging.attemptPrefix(h.runId, h.attempt))/manifest.json"
        if let job {
            let (phase, final, reason) = SlurmStates.phase(job.state)
            if phase == .retry { return TaskStatus(phase: .retry, schedulerState: job.state, node: job.node) }
            if final == .interrupted || job.state.uppercased() == "TIMEOUT" || job.state.uppercased() == "OUT_OF_MEMORY" {
                var st = TaskStatus(phase: .done, schedulerState: job.state, node: job.node)
                st.failure = (final ?? .failed, reason ?? job.state, job.exitCode)
                return st
            }
        } else if let array = id.split(separator: "_").first, cancelledJobs.contains(id) || cancelledJobs.contains(String(array)) {
            var st = TaskStatus(phase: .done, schedulerState: "CANCELLED")
            st.failure = (.interrupted, "SLURM job \(id) CANCELLED before it started", nil)
            return st
        }
        // Finished (or forgotten) without a manifest: the upload may still be on its way.
        let first = awaitingManifest[h.runId] ?? Clock.monotonic()
        awaitingManifest[h.runId] = first
        guard Clock.monotonic() - first > settings.manifestGrace else {
            return TaskStatus(phase: .running, schedulerState: job?.state ?? "UNKNOWN", node: job?.node)
        }
        awaitingManifest.removeValue(forKey: h.runId)
        // Its staged files are deleted next: a job the scheduler may still hold somewhere is
        // cancelled first, so no worker starts later on files that are gone.
        if job == nil, let jobId = h.jobId, let v = try? apiVersion() { _ = try? call("DELETE", "/slurm/\(v)/job/\(jobId)", accept404: true) }
        var st = TaskStatus(phase: .done, schedulerState: job?.state ?? "UNKNOWN", node: job?.node)
        let said = job.map { "SLURM says \($0.state)" + ($0.exitCode.map { " (exit \($0))" } ?? "") } ?? "SLURM no longer knows job \(id)"
        st.failure = (
            .failed,
            "\(said) but no manifest appeared at \(where_) within \(DurationText.format(settings.manifestGrace)); the worker could "
                + "not run or upload (is repro_path '\(settings.reproPath)' right on the nodes? its log is "
                + "\(settings.scratch)/repro-slurm-*.log on \(job?.node ?? "the node"))", job?.exitCode
        )
        return st
    }
}
