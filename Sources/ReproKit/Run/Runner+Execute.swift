import Foundation

extension Runner {
    /// A miss: record the run as running, execute it on the local backend, ingest its outputs,
    /// record the result and materialize the outputs.
    func execute(_ p: Prepared) throws -> RunOutcome {
        let store = p.store
        let runId = HostInfo.newRunId()
        let work = store.tmpDir + "/run-" + runId
        let outdir = work + "/out"
        let configFile = work + "/config.json"
        try Store.makeDirectory(outdir)
        defer { FileIO.removeTree(work) }

        let spec = p.spec
        let argv = try CommandTemplate.render(
            spec.command,
            .init(params: spec.params, solver: spec.solver, seed: p.seed, outdir: outdir, config: configFile))
        let env = SimulationEnvironment.build(
            spec: spec, caller: request.environment, seed: p.seed, outdir: outdir, configFile: configFile, runId: runId,
            key: p.key)
        guard
            let executable = ChildProcess.resolveExecutable(
                argv[0], path: env["PATH"] ?? "", workingDirectory: p.repo.workdir)
        else {
            throw EnvironmentError(
                "cannot find the program '\(argv[0])' (command[0] in \(request.specPath)) on PATH=\(env["PATH"] ?? "") "
                    + "or relative to \(p.repo.workdir); install it or give its path")
        }
        let realExecutable = (executable as NSString).resolvingSymlinksInPath
        let executableHash = try store.hashFile(atPath: realExecutable).sha256
        Trace.mark("executable resolved and hashed")

        let configJSON: JSONValue = [
            "name": .string(spec.name), "params": .object(spec.params), "seed": .int(p.seed),
            "solver": .object(spec.solver), "env": .object(spec.env.mapValues { .string($0) }),
            "run_id": .string(runId), "key": .string(p.key), "outdir": .string(outdir),
        ]
        try FileIO.writeAtomically(Array((configJSON.pretty + "\n").utf8), to: configFile, sync: false)

        let started = Clock.now()
        let patchBlob = try p.patch.map { try store.putBytes($0) }
        var record = RunRecord(
            runId: runId, key: p.key, name: spec.name, specPath: request.specPath, configHash: p.configHash,
            config: spec.semanticConfig, commit: p.identity.commit, commitSummary: p.identity.commitSummary,
            code: p.identity.keyJSON, dirty: !p.identity.dirtyFiles.isEmpty, dirtyFiles: p.identity.dirtyFiles,
            patchBlob: patchBlob?.sha256, seed: p.seed, solver: .object(spec.solver), inputs: p.inputs,
            env: SimulationEnvironment.recorded(env, passthrough: spec.envPassthrough), command: argv,
            backend: "local", resources: .object(spec.resources), timeoutS: spec.timeout, host: HostInfo.hostname,
            os: HostInfo.os, reproVersion: HostInfo.reproVersion, executablePath: realExecutable,
            executableSha256: executableHash, status: .running, exitCode: nil, message: nil, pid: getpid(),
            startedAt: Clock.iso8601(started), finishedAt: nil, durationS: nil, stdoutBlob: nil, stderrBlob: nil,
            outputs: [], hitCount: 0, user: HostInfo.user)
        try store.withBlobWriteLock {
            try store.insertRunning(record, blobs: patchBlob.map { [$0] } ?? [])
        }
        Trace.mark("run recorded as running")

        let child = ChildProcess(
            executable: executable, arguments: Array(argv.dropFirst()), environment: env,
            workingDirectory: p.repo.workdir, stdoutPath: work + "/stdout", stderrPath: work + "/stderr",
            timeout: spec.timeout)
        let end: ChildEnd
        let duration: Double
        do {
            (end, duration) = try child.run()
        } catch {
            try? store.markInterrupted(runId: runId, message: "could not start: \(error.message)")
            throw error
        }

        Trace.mark("simulation finished")
        var status: RunStatus
        var message: String?
        switch end {
        case .exited(0): status = .succeeded
        case .exited(let c): status = .failed; message = "the simulation exited with code \(c)"
        case .signaled(let s): status = .failed; message = "the simulation was killed by signal \(s)"
        case .timedOut(let t):
            status = .failed
            message = "timed out after \(DurationText.format(t)); the process group was killed"
        case .interrupted(let s):
            status = .interrupted
            message = "interrupted by signal \(s); the simulation's process group was stopped"
        }

        let collected = OutputCollector.collect(outdir: outdir, patterns: spec.outputs)
        if status == .succeeded, !collected.missing.isEmpty {
            status = .failed
            message = "declared output(s) not written under $REPRO_OUTDIR: \(collected.missing.joined(separator: ", "))"
        }
        // Blob writes and the record that references them happen under the shared GC lock.
        let (outputs, stdoutBlob, stderrBlob, completion) = try store.withBlobWriteLock {
            () throws -> ([(OutputFile, inlineJSON: String?, blob: BlobRef)], BlobRef, BlobRef, Store.Completion) in
            var outputs: [(OutputFile, inlineJSON: String?, blob: BlobRef)] = []
            for name in collected.files {
                let path = outdir + "/" + name
                let blob = try store.putFile(atPath: path)
                outputs.append((OutputFile(name: name, sha256: blob.sha256, size: blob.size), Self.inlineJSON(name, path), blob))
            }
            let stdoutBlob = try store.putFile(atPath: work + "/stdout")
            let stderrBlob = try store.putFile(atPath: work + "/stderr")
            let completion = Store.Completion(
                status: status, exitCode: end.exitCode, message: message, finishedAt: Clock.iso8601(Clock.now()),
                durationS: duration, stdout: stdoutBlob, stderr: stderrBlob, executablePath: nil, executableSha256: nil,
                outputs: outputs)
            try store.finish(runId: runId, completion)
            return (outputs, stdoutBlob, stderrBlob, completion)
        }

        Trace.mark("outputs ingested, run recorded")
        record.status = status
        record.exitCode = end.exitCode
        record.message = message
        record.finishedAt = completion.finishedAt
        record.durationS = duration
        record.stdoutBlob = stdoutBlob.sha256
        record.stderrBlob = stderrBlob.sha256
        record.outputs = outputs.map(\.0)

        var paths: [String: String] = [:]
        var dir: String? = nil
        if status == .succeeded {
            let target = resultsDir(p)
            dir = target
            for o in record.outputs {
                let dest = target + "/" + o.name
                try Store.makeDirectory((dest as NSString).deletingLastPathComponent)
                // The file is already hashed into the store; moving it is the cheap copy.
                if rename(outdir + "/" + o.name, dest) != 0 {
                    try store.materializeBlob(o.sha256, to: dest)
                }
                paths[o.name] = dest
            }
        } else if let tail = Self.tail(work + "/stderr") {
            log(tail)
        }
        return RunOutcome(record: record, cache: .miss, outputsDir: dir, outputPaths: paths)
    }

    /// `result.json` (at any depth) is kept inline for the `results` view when it is valid JSON.
    static func inlineJSON(_ name: String, _ path: String) -> String? {
        guard name == "result.json" || name.hasSuffix("/result.json") else { return nil }
        guard let bytes = try? FileIO.readAll(path), bytes.count <= 4 << 20, (try? JSONParser.parse(bytes)) != nil
        else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The last lines of the simulation's stderr, shown when it fails.
    static func tail(_ path: String, lines: Int = 15) -> String? {
        guard let bytes = try? FileIO.readAll(path), !bytes.isEmpty else { return nil }
        let text = String(decoding: bytes.suffix(8192), as: UTF8.self)
        let last = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1)
        return "--- last lines of the simulation's stderr ---\n" + last.joined(separator: "\n")
    }
}

extension DurationText {
    /// `2h`, `1h30m`, `45s`, `1.5s`.
    public static func format(_ seconds: Double) -> String {
        if seconds < 60 {
            return seconds == seconds.rounded() ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
        }
        var s = Int(seconds.rounded())
        var out = ""
        if s >= 86400 { out += "\(s / 86400)d"; s %= 86400 }
        if s >= 3600 { out += "\(s / 3600)h"; s %= 3600 }
        if s >= 60 { out += "\(s / 60)m"; s %= 60 }
        if s > 0 { out += "\(s)s" }
        return out
    }
}
