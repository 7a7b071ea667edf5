import Foundation
import ReproExecution
import ReproSupport
import ReproStore

extension Dispatcher {
    /// Recording finished tasks failed (a full disk, most often): their outputs are removed
    /// from the task folders (a slot kept them otherwise, on the very disk that is full), the
    /// runs are marked failed where the store still takes a write, and the error says what to
    /// free when the disk is full.
    func recordingFailed(_ error: any Error, _ tasks: [(TaskHandle, String)]) -> any Error {
        for (h, dir) in tasks {
            if recycleTaskDirs {
                FileIO.emptyTree(dir + "/out")
                unlink(dir + "/manifest.json")
            } else {
                backend.release(h)
            }
            try? store.markFailed(runId: h.runId, message: "its result could not be recorded: \(error)")
        }
        // SQLite's own message already carries the advice (see SQLiteDatabase.fullAdvice).
        guard let e = error as? StoreError, e.isDiskFull, e.sqliteCode == nil else { return error }
        return StoreError(
            "recording \(tasks.count == 1 ? "run " + tasks[0].0.runId : "\(tasks.count) runs") failed: \(e.message). Its outputs were removed from the task folder. "
                + DiskSpace.advice(storeRoot: store.root), posixCode: e.posixCode)
    }

    /// Hashes a finished task's outputs and streams into the store and builds its completion.
    func completion(_ h: TaskHandle, _ st: TaskStatus, _ collected: CollectedTask) throws
        -> (Store.Completion, [(OutputFile, inlineJSON: String?, blob: BlobRef)])
    {
        let manifest = st.manifest
        var status = manifest?.status ?? st.failure?.status ?? .failed
        var message = manifest?.message ?? st.failure?.message
        let outdir = collected.dir + "/out"
        var outputs: [(OutputFile, inlineJSON: String?, blob: BlobRef)] = []
        if let problem = collected.problem {
            // Bytes that do not match their manifest are never stored.
            status = .failed
            message = problem
        }
        // A manifest names its outputs; a name that leaves the output folder (`../stdout`) or
        // that the spec did not declare is refused, and nothing of that manifest is kept.
        let declared = known[h.runId]?.config["outputs"]?.arrayValue?.compactMap(\.stringValue)
        let nameProblems = RecordIntegrity.outputProblems(
            (manifest?.outputs ?? []).map { OutputFile(name: $0.name, sha256: $0.sha256, size: $0.size) }, declared: declared)
        if collected.problem == nil, !nameProblems.isEmpty {
            status = .failed
            message = "the task's manifest is refused: " + nameProblems.prefix(3).joined(separator: "; ")
        }
        for o in collected.problem == nil && nameProblems.isEmpty ? manifest?.outputs ?? [] : [] {
            let path = outdir + "/" + o.name
            guard access(path, F_OK) == 0 else {
                status = .failed
                message = "output \(o.name) is in the manifest but not in \(outdir)"
                continue
            }
            let blob = try store.putFile(atPath: path)
            if blob.sha256 != o.sha256 {
                status = .failed
                message = "output \(o.name) changed after the simulation hashed it (\(o.sha256.prefix(12)) → \(blob.sha256.prefix(12)))"
            }
            outputs.append((OutputFile(name: o.name, sha256: blob.sha256, size: blob.size), TaskFiles.inlineJSON(o.name, path), blob))
        }
        let stdout = access(collected.dir + "/stdout", F_OK) == 0 ? try store.putFile(atPath: collected.dir + "/stdout") : nil
        let stderr = access(collected.dir + "/stderr", F_OK) == 0 ? try store.putFile(atPath: collected.dir + "/stderr") : nil
        var exeHash = manifest?.executableSha256
        if exeHash == nil, let exe = manifest?.executablePath {
            exeHash = executableHashes[exe] ?? (try? store.hashFile(atPath: exe).sha256)
            executableHashes[exe] = exeHash
        }
        var c = Store.Completion(
            status: status, exitCode: manifest?.exitCode ?? st.failure?.exitCode, message: message,
            finishedAt: manifest?.finishedAt ?? Clock.iso8601(Clock.now()), durationS: manifest?.durationS ?? 0,
            stdout: stdout, stderr: stderr, executablePath: manifest?.executablePath, executableSha256: exeHash, outputs: outputs)
        c.startedAt = manifest.flatMap { $0.startedAt.isEmpty ? nil : $0.startedAt }
        if let (info, blob) = try interpreter(manifest, runId: h.runId) {
            c.interpreter = info
            c.packages = blob
        }
        let record = known[h.runId]
        if !backend.capabilities.runsInProcess {
            c.host = manifest?.host ?? st.node
            c.os = manifest?.os
            c.jobId = manifest?.jobId ?? h.jobId
            if let record, let manifest { Dispatcher.ranElsewhere(&c, manifest: manifest, submitted: record) }
        }
        let staged = backend.capabilities.sharesFileSystem
            ? 0 : (record?.inputs.reduce(Int64(0)) { $0 + $1.size } ?? 0) + outputs.reduce(Int64(0)) { $0 + $1.0.size }
        c.cost = price?.cost(seconds: c.durationS, cores: Router.cores(record?.resources.objectValue ?? [:]), stagedBytes: staged)
        c.attempt = Attempt(
            backend: backend.name, type: backend.type, outcome: lostRuns.contains(h.runId) ? Attempt.backendFailure : status.rawValue,
            reason: status != .succeeded ? message.map { String($0.prefix(300)) } : nil, durationS: c.durationS, cost: c.cost,
            finishedAt: c.finishedAt, resubmission: h.attempt > 0 ? h.attempt : nil)
        return (c, outputs)
    }
}

extension Dispatcher {
    /// A run that ran on another machine is recorded as it ran there: the user, PATH and HOME
    /// of its manifest; the record made at submission becomes the submitter.
    static func ranElsewhere(_ c: inout Store.Completion, manifest: TaskManifest, submitted record: RunRecord) {
        guard let user = manifest.user, !user.isEmpty else { return }
        c.user = user
        var env = record.env
        env["PATH"] = manifest.pathVariable
        env["HOME"] = manifest.home
        c.env = env
        c.submitter = Submitter(user: record.user, host: record.host)
    }

    /// The interpreter behind a finished task and its package-list blob: from the manifest
    /// (probed on the node), else probed here for a local run (cached in the store).
    func interpreter(_ manifest: TaskManifest?, runId: String) throws -> (InterpreterInfo, BlobRef)? {
        let context = probeContext.removeValue(forKey: runId)
        guard let manifest else { return nil }
        if let info = manifest.interpreter {
            return (info, try store.putBytes(Array(info.packagesText.utf8)))
        }
        guard backend.capabilities.runsInProcess, let exe = manifest.program ?? manifest.executablePath, let (env, workdir) = context
        else { return nil }
        let memo = exe + "\u{0}" + workdir + "\u{0}" + env.sorted { $0.key < $1.key }.filter { !$0.key.hasPrefix("REPRO_") }
            .map { $0.key + "=" + $0.value }.joined(separator: "\u{0}")
        if let known = probes[memo] { return known }
        var result: (InterpreterInfo, BlobRef)? = nil
        if let info = InterpreterProbe.probe(executable: exe, environment: env, workdir: workdir, store: store) {
            result = (info, try store.putBytes(Array(info.packagesText.utf8)))
        }
        probes[memo] = result
        return result
    }
}
