import ReproStore

/// SLURM's job states and output formats, as pure functions (tested on canned output, then
/// for real against the test cluster).
public enum SlurmStates {
    /// Maps a SLURM state (`squeue %T`, `scontrol JobState=`) to a task phase, and for final
    /// states without a manifest, to a run status and a reason.
    public static func phase(_ state: String) -> (TaskStatus.Phase, RunStatus?, String?) {
        let s = state.uppercased().split(separator: " ").first.map(String.init) ?? state
        switch s {
        case "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "POWER_UP_NODE":
            return (.queued, nil, nil)
        case "RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "SUSPENDED", "STOPPED":
            return (.running, nil, nil)
        case "COMPLETED": return (.done, .succeeded, nil)
        case "FAILED": return (.done, .failed, "SLURM job FAILED")
        case "TIMEOUT": return (.done, .failed, "SLURM time limit reached (TIMEOUT); the job was killed")
        case "OUT_OF_MEMORY": return (.done, .failed, "SLURM job ran out of memory (OUT_OF_MEMORY)")
        case "BOOT_FAIL": return (.done, .failed, "SLURM node failed to boot (BOOT_FAIL)")
        case "DEADLINE": return (.done, .failed, "SLURM deadline reached (DEADLINE)")
        case "CANCELLED": return (.done, .interrupted, "SLURM job CANCELLED")
        case "NODE_FAIL": return (.retry, nil, "SLURM node failure (NODE_FAIL)")
        case "PREEMPTED": return (.retry, nil, "SLURM job PREEMPTED")
        default: return (.running, nil, nil)
        }
    }

    /// `sbatch --parsable` prints `JOBID` or `JOBID;CLUSTER`.
    public static func parseSubmitted(_ out: String) -> String? {
        let line = out.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
        let id = line.split(separator: ";").first.map(String.init) ?? ""
        return !id.isEmpty && id.allSatisfy(\.isNumber) ? id : nil
    }

    public struct Row: Sendable, Equatable {
        public var jobId: String
        public var state: String
        public var reason: String
        public var node: String
    }

    /// Lines of `squeue -h -r --states=all -o '%i|%T|%r|%N'`.
    public static func parseSqueue(_ out: String) -> [Row] {
        out.split(separator: "\n").compactMap { line in
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard f.count >= 4, !f[0].isEmpty else { return nil }
            return Row(jobId: f[0], state: f[1], reason: f[2], node: f[3])
        }
    }

    /// `scontrol -o show job ID`: one line per job (array tasks each on their own line) with
    /// `JobId=`, `ArrayJobId=`, `ArrayTaskId=`, `JobState=`, `ExitCode=code:signal`, `NodeList=`.
    public static func parseScontrol(_ out: String) -> [(jobId: String, state: String, exitCode: Int32?, node: String)] {
        out.split(separator: "\n").compactMap { line in
            var fields: [String: String] = [:]
            for token in line.split(separator: " ") {
                let parts = token.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
            }
            guard let job = fields["JobId"], let state = fields["JobState"] else { return nil }
            var id = job
            if let a = fields["ArrayJobId"], let t = fields["ArrayTaskId"], !t.contains("-"), !t.contains("[") { id = "\(a)_\(t)" }
            let code = fields["ExitCode"].flatMap { $0.split(separator: ":").first.flatMap { Int32($0) } }
            let node = fields["NodeList"] ?? ""
            return (id, state, code, node == "(null)" ? "" : node)
        }
    }

    /// `--time` from a duration in seconds: whole minutes, rounded up.
    public static func timeLimit(seconds: Double) -> String {
        String(Int((seconds / 60).rounded(.up)))
    }
}
