import Foundation
import ReproSupport

/// The positions of the `runs` columns in a query, resolved by name once per statement, so a
/// row is read by name without hashing each name for each of thousands of rows.
struct RunColumns {
    let runId: Int32
    let key: Int32
    let name: Int32
    let specPath: Int32
    let configHash: Int32
    let configJson: Int32
    let commitId: Int32
    let commitSummary: Int32
    let codeJson: Int32
    let dirty: Int32
    let dirtyFilesJson: Int32
    let patchBlob: Int32
    let seed: Int32
    let solverJson: Int32
    let inputsJson: Int32
    let envJson: Int32
    let commandJson: Int32
    let backend: Int32
    let resourcesJson: Int32
    let timeoutS: Int32
    let host: Int32
    let os: Int32
    let reproVersion: Int32
    let executablePath: Int32
    let executableSha256: Int32
    let status: Int32
    let exitCode: Int32
    let message: Int32
    let pid: Int32
    let startedAt: Int32
    let finishedAt: Int32
    let durationS: Int32
    let stdoutBlob: Int32
    let stderrBlob: Int32
    let user: Int32
    let jobId: Int32
    let taskRef: Int32
    let backendType: Int32
    let attempts: Int32
    let hitCount: Int32
    let staleJson: Int32
    let invalidatedReason: Int32
    let outputsEvictedAt: Int32
    let queuedAt: Int32
    let interpreterJson: Int32
    let packagesBlob: Int32
    let originJson: Int32
    let estimateJson: Int32
    let routingJson: Int32
    let attemptsJson: Int32
    let fallbackJson: Int32
    let cost: Int32
    let costEstimate: Int32
    let submitterJson: Int32

    init(_ s: SQLiteStatement.Row) throws(StoreError) {
        runId = try s.index("run_id")
        key = try s.index("key")
        name = try s.index("name")
        specPath = try s.index("spec_path")
        configHash = try s.index("config_hash")
        configJson = try s.index("config_json")
        commitId = try s.index("commit_id")
        commitSummary = try s.index("commit_summary")
        codeJson = try s.index("code_json")
        dirty = try s.index("dirty")
        dirtyFilesJson = try s.index("dirty_files_json")
        patchBlob = try s.index("patch_blob")
        seed = try s.index("seed")
        solverJson = try s.index("solver_json")
        inputsJson = try s.index("inputs_json")
        envJson = try s.index("env_json")
        commandJson = try s.index("command_json")
        backend = try s.index("backend")
        resourcesJson = try s.index("resources_json")
        timeoutS = try s.index("timeout_s")
        host = try s.index("host")
        os = try s.index("os")
        reproVersion = try s.index("repro_version")
        executablePath = try s.index("executable_path")
        executableSha256 = try s.index("executable_sha256")
        status = try s.index("status")
        exitCode = try s.index("exit_code")
        message = try s.index("message")
        pid = try s.index("pid")
        startedAt = try s.index("started_at")
        finishedAt = try s.index("finished_at")
        durationS = try s.index("duration_s")
        stdoutBlob = try s.index("stdout_blob")
        stderrBlob = try s.index("stderr_blob")
        user = try s.index("user")
        jobId = try s.index("job_id")
        taskRef = try s.index("task_ref")
        backendType = try s.index("backend_type")
        attempts = try s.index("attempts")
        hitCount = try s.index("hit_count")
        staleJson = try s.index("stale_json")
        invalidatedReason = try s.index("invalidated_reason")
        outputsEvictedAt = try s.index("outputs_evicted_at")
        queuedAt = try s.index("queued_at")
        interpreterJson = try s.index("interpreter_json")
        packagesBlob = try s.index("packages_blob")
        originJson = try s.index("origin_json")
        estimateJson = try s.index("estimate_json")
        routingJson = try s.index("routing_json")
        attemptsJson = try s.index("attempts_json")
        fallbackJson = try s.index("fallback_json")
        cost = try s.index("cost")
        costEstimate = try s.index("cost_estimate")
        submitterJson = try s.index("submitter_json")
    }
}
