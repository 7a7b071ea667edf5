import Foundation
import Synchronization
import ReproExecution
import ReproSupport
import ReproStore

extension Runner {
    /// The backend this request runs on: `--backend`, else the spec's.
    func backendName(_ p: Prepared) -> String { request.backend ?? p.spec.backend }

    /// The task and the `running` record for a miss. The task directory lives under the
    /// backend's staging root (for SLURM: a folder the nodes see).
    static func makeTask(
        _ p: Prepared, specPath: String, environment: [String: String], backend: Backend, runId: String, patchBlob: String?,
        taskDir reusedDir: String? = nil
    ) throws -> (TaskSpec, RunRecord) {
        let spec = p.spec
        let taskDir = reusedDir ?? backend.taskRoot + "/run-" + runId
        // On a machine that shares no disk, the worker checks the commit out under its task folder.
        let remote = !backend.capabilities.sharesFileSystem
        let workdir = remote ? taskDir + "/repo" : p.repo.workdir
        let outdir = taskDir + "/out"
        let configFile = taskDir + "/config.json"
        let argv = try CommandTemplate.render(
            spec.command,
            .init(params: spec.params, solver: spec.solver, seed: p.seed, outdir: outdir, config: configFile))
        // A worker that shares no disk checks out a fresh tree: its bytecode is fresh too, unless
        // the spec chose a folder of its own.
        let bytecode = remote || spec.env["PYTHONPYCACHEPREFIX"] != nil
            ? nil : p.bytecodeDir
        // Marks the folder used (gc removes idle ones); Python makes it when it first writes.
        if let bytecode { BytecodeFolders.markUsed(bytecode) }
        var env = SimulationEnvironment.build(
            spec: spec, caller: environment, seed: p.seed, outdir: outdir, configFile: configFile, runId: runId, key: p.key,
            bytecodeDir: bytecode)
        var executablePath: String? = nil
        if backend.capabilities.runsInProcess {
            guard let exe = ChildProcess.resolveExecutable(argv[0], path: env["PATH"] ?? "", workingDirectory: p.repo.workdir) else {
                throw EnvironmentError(
                    ChildProcess.whyNotRunnable(argv[0], path: env["PATH"] ?? "", workingDirectory: p.repo.workdir)
                        + " (command[0] in \(specPath)); install it or give its path")
            }
            executablePath = FileIO.realPath(exe)
        } else {
            // PATH and HOME come from the machine that runs it.
            env.removeValue(forKey: "PATH")
            env.removeValue(forKey: "HOME")
        }
        // Recorded after PATH and HOME left a scheduler's task: the worker's manifest says what
        // they were where it ran, not the submitter's.
        let recordedEnv = SimulationEnvironment.recorded(env, passthrough: spec.envPassthrough, key: try p.store.secretKey())
        let configJSON: JSONValue = [
            "name": .string(spec.name), "params": .object(spec.params), "seed": .int(p.seed),
            "solver": .object(spec.solver), "env": .object(spec.env.mapValues { .string($0) }),
            "run_id": .string(runId), "key": .string(p.key), "outdir": .string(outdir),
        ]
        var task = TaskSpec(
            runId: runId, key: p.key, name: spec.name, taskDir: taskDir, argv: argv, env: env, workdir: workdir,
            outputs: spec.outputs, timeout: spec.timeout, configJSON: configJSON)
        task.secretNames = spec.envPassthrough.filter { env[$0] != nil }
        if remote {
            task.sources = TaskSources(
                repoRoot: p.repo.workdir, commit: p.identity.commit, dirtyFiles: p.identity.dirtyFiles, inputs: p.inputs)
        }
        let record = RunRecord(
            runId: runId, key: p.key, name: spec.name, specPath: RepoPath.relative(specPath, repo: p.repo.workdir),
            configHash: p.configHash,
            config: spec.semanticConfig, commit: p.identity.commit, commitSummary: p.identity.commitSummary,
            code: p.identity.recorded, dirty: !p.identity.dirtyFiles.isEmpty, dirtyFiles: p.identity.dirtyFiles,
            patchBlob: patchBlob, seed: p.seed, solver: .object(spec.solver), inputs: p.inputs,
            env: recordedEnv, command: argv, backend: backend.name, resources: .object(spec.resources), timeoutS: spec.timeout,
            host: HostInfo.hostname, os: HostInfo.os, reproVersion: HostInfo.reproVersion, executablePath: executablePath,
            executableSha256: nil, status: .running, exitCode: nil, message: nil, pid: getpid(),
            startedAt: Clock.iso8601(Clock.now()), finishedAt: nil, durationS: nil, stdoutBlob: nil, stderrBlob: nil,
            outputs: [], hitCount: 0, user: HostInfo.user, jobId: nil, taskRef: remote ? nil : taskDir, backendType: backend.type)
        return (task, record)
    }

    func dispatcher(_ p: Prepared, backend: Backend) throws -> Dispatcher {
        let d = Dispatcher(
            store: p.store, backend: backend, log: log, maxRetries: p.config.maxRetries(backend: backend.name), outageLimit: p.config.orchestration.outageLimit,
            resultsDir: { [request] r in
                request.outDir.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
                    ?? ResultsDir.path(repoRoot: p.repo.workdir, name: r.name, key: r.key)
            })
        d.announceStates = backend.capabilities.outlivesSubmitter
        d.price = p.config.price(backend: backend.name)
        d.showFailureTail = true
        d.confirmCancel = { [request] n in request.confirmCancel(n, backend.name) }
        return d
    }

    /// Waits for submitted handles and turns the one result into an outcome.
    func wait(_ handles: [TaskHandle], dispatcher d: Dispatcher, fallback: RunRecord) throws -> RunOutcome {
        var result: Dispatcher.Finished?
        let how = try d.drive(handles, onFinished: { result = $0 }, whileWaiting: { [unowned self] in settleExplanation() })
        Trace.mark("outputs ingested, run recorded")
        if let r = result { return RunOutcome(record: r.record, cache: .miss, outputsDir: r.outputsDir, outputPaths: r.outputPaths) }
        // Another repro ingested it, or we detached: report what the store says now.
        var r = (try? d.store.run(id: fallback.runId)) ?? fallback
        if how == .detached { r.status = .running }
        return RunOutcome(record: r, cache: .miss, outputsDir: nil, outputPaths: [:])
    }
}

/// Bytecode folders this process has marked used: once each is enough for gc (which removes
/// folders idle for days), and a sweep's points share one.
enum BytecodeFolders {
    private static let marked = Mutex<Set<String>>([])

    static func markUsed(_ dir: String) {
        guard marked.withLock({ $0.insert(dir).inserted }) else { return }
        _ = utimensat(AT_FDCWD, dir, nil, 0)
    }
}
