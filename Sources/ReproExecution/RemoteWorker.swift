import Foundation
import Logging
import ReproSupport
import ReproRemote

/// `repro exec-task URL` on a machine that shares no disk with the submitter: fetches the task
/// through its presigned URLs, checks out the code and inputs (each verified by SHA-256) into a
/// private scratch folder, runs the simulation exactly as `TaskExecutor` runs it everywhere,
/// and uploads logs, outputs and, last, the manifest. Needs nothing from the submitting
/// machine's file system and no credentials.
public enum RemoteWorker {
    public struct Outcome: Sendable {
        public var manifest: TaskManifest
        /// Whether the manifest reached the bucket (else the submitter sees a task that never
        /// finished, and retries or reports it).
        public var manifestUploaded: Bool
    }

    /// Fetches a document and checks it is the one the submitter staged (its digest came
    /// through the scheduler): a task.json rewritten in the bucket is never run.
    static func fetchSealed(_ url: String, sha256: String, http: HTTPClient, what: String) throws -> JSONValue {
        let bytes = try PresignedTransfer.get(url, http: http, maxBytes: 64 << 20)
        guard Hashing.sha256Hex(bytes) == sha256 else {
            throw ExecutionError(
                "\(what) at \(HTTPClient.redacted(url)) is not the one the submitter staged (SHA-256 \(Hashing.sha256Hex(bytes).prefix(12)), "
                    + "expected \(sha256.prefix(12))): it was replaced in storage; nothing was run")
        }
        return try JSONParser.parse(bytes)
    }

    /// Task `i`'s URL and digest in a batch: from the one page that holds it (v3), or from the
    /// whole list (v2, batches staged by earlier versions).
    static func entry(_ i: Int, of batch: JSONValue, url: String, http: HTTPClient) throws -> (url: String, sha256: String) {
        var list = batch["tasks"]?.arrayValue ?? []
        var first = 0
        var count = list.count
        if let pages = batch["pages"]?.arrayValue {
            count = batch["count"]?.intValue.map(Int.init) ?? 0
            guard let page = pages.first(where: { p in
                guard let f = p["first"]?.intValue, let n = p["count"]?.intValue else { return false }
                return Int(f) <= i && i < Int(f + n)
            }), let pageURL = page["url"]?.stringValue, let pageSha = page["sha256"]?.stringValue
            else {
                throw ConfigError("the batch at \(HTTPClient.redacted(url)) has \(count) task(s); index \(i) is not one of them")
            }
            let doc = try fetchSealed(pageURL, sha256: pageSha, http: http, what: "the page of the batch holding task \(i)")
            list = doc["tasks"]?.arrayValue ?? []
            first = doc["first"]?.intValue.map(Int.init) ?? -1
        }
        let k = i - first
        guard i >= 0, k >= 0, k < list.count, let taskURL = list[k]["url"]?.stringValue, let taskSha = list[k]["sha256"]?.stringValue else {
            throw ConfigError("the batch at \(HTTPClient.redacted(url)) has \(count) task(s); index \(i) is not one of them")
        }
        return (taskURL, taskSha)
    }

    /// Runs the task the seal names (a task.json, or a batch of them picked by `index` or the
    /// scheduler's array index in `machine`), and signs its manifest with the seal's key.
    public static func run(seal: TaskSeal, index: Int?, machine: [String: String], logger: Logger = Logger(label: "repro.worker")) throws
        -> Outcome
    {
        let log: (String) -> Void = { logger.notice("\($0)") }
        let http = HTTPClient()
        let url = seal.url
        var task = try fetchSealed(url, sha256: seal.sha256, http: http, what: "the task")
        if task["tasks"] != nil || task["pages"] != nil {
            let i = index ?? machine["SLURM_ARRAY_TASK_ID"].flatMap { Int($0) } ?? machine["AWS_BATCH_JOB_ARRAY_INDEX"].flatMap { Int($0) } ?? 0
            let (taskURL, taskSha) = try entry(i, of: task, url: url, http: http)
            task = try fetchSealed(taskURL, sha256: taskSha, http: http, what: "task \(i) of the batch")
        }
        guard task["v"]?.intValue == 2, let runId = task["run_id"]?.stringValue, let placeholder = task["task_dir"]?.stringValue,
            let results = task["results"]?.objectValue, let manifestURL = results["manifest.json"]?.stringValue
        else { throw ConfigError("\(HTTPClient.redacted(url)) is not a remote task spec of this repro version (v 2)") }

        // Beats from before the checkout until the manifest is up: the submitter tells a task
        // that runs from one whose node died while its scheduler still says RUNNING.
        let heartbeat = results["heartbeat"]?.stringValue.map {
            HeartbeatSender.start(url: $0, interval: max(0.2, task["heartbeat_interval"]?.numberValue ?? 30), runId: runId)
        }
        defer { heartbeat?.stop() }
        let base = task["scratch"]?.stringValue ?? machine["TMPDIR"] ?? "/tmp"
        let dir = try makeScratch(base: base, runId: runId)
        defer { FileIO.removeTree(dir) }
        var manifest: TaskManifest
        do {
            let spec = try checkout(task, into: dir, placeholder: placeholder, http: http, log: log)
            manifest = TaskExecutor.execute(spec, machine: machine, writeManifest: false, probeInterpreter: true)
        } catch {
            manifest = TaskManifest.failure(runId: runId, message: "the worker on \(HostInfo.hostname) could not prepare the task: \(error)")
            manifest.host = HostInfo.hostname
            manifest.os = HostInfo.os
        }
        manifest.jobId = manifest.jobId ?? machine["SLURM_ARRAY_JOB_ID"].flatMap { a in machine["SLURM_ARRAY_TASK_ID"].map { "\(a)_\($0)" } }
            ?? machine["SLURM_JOB_ID"] ?? machine["AWS_BATCH_JOB_ID"]
        // Logs go up even when the simulation failed: they say why.
        var uploadProblems: [String] = []
        for name in ["stdout", "stderr"] {
            guard let u = results[name]?.stringValue, access(dir + "/" + name, F_OK) == 0 else { continue }
            do { try PresignedTransfer.put(u, file: dir + "/" + name, http: http) } catch { uploadProblems.append("\(name): \(error)") }
        }
        if !manifest.outputs.isEmpty, let u = results["outputs.tar"]?.stringValue {
            do {
                let tar = dir + "/outputs.tar"
                let w = try Tar.Writer(path: tar)
                for o in manifest.outputs {
                    try w.add(.file(path: o.name, executable: false, size: o.size, source: .path(dir + "/out/" + o.name)))
                }
                try w.finish()
                try PresignedTransfer.put(u, file: tar, http: http)
            } catch {
                uploadProblems.append("outputs: \(error)")
            }
        }
        if !uploadProblems.isEmpty {
            // Missing outputs must never look like success.
            let own = manifest.status.rawValue
            manifest.status = .failed
            manifest.message = "uploading the task's results failed (\(uploadProblems.joined(separator: "; "))); the simulation's "
                + "own status was \(own)" + (manifest.message.map { ": \($0)" } ?? "")
            if uploadProblems.contains(where: { $0.hasPrefix("outputs") }) { manifest.outputs = [] }
        }
        var uploaded = false
        do {
            // Signed with this run's key: the submitter accepts no manifest it cannot verify.
            let signed = TaskSeal.signed(manifest.json, key: seal.key, runId: runId)
            uploaded = try PresignedTransfer.put(manifestURL, bytes: Array((signed.pretty + "\n").utf8), ifNoneMatch: true, http: http)
            if !uploaded { log("run \(runId): a manifest for this attempt already exists; this execution's result is not used") }
        } catch {
            log("run \(runId): could not upload the manifest: \(error)")
        }
        return Outcome(manifest: manifest, manifestUploaded: uploaded)
    }

    static func makeScratch(base: String, runId: String) throws -> String {
        var template = Array("\(base)/repro-\(runId)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ b in b.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw EnvironmentError("cannot make a scratch folder under \(base) on \(HostInfo.hostname): \(FileIO.errnoText())")
        }
        return String(cString: made)
    }

    /// Downloads and verifies code, overlay and inputs; returns the task as it runs here.
    static func checkout(_ t: JSONValue, into dir: String, placeholder: String, http: HTTPClient, log: (String) -> Void) throws -> TaskSpec {
        let repo = dir + "/repo"
        try FileIO.makeDirectory(repo)
        guard let code = t["code"], let codeURL = code["url"]?.stringValue, let codeSha = code["sha256"]?.stringValue else {
            throw ConfigError("the task names no code archive")
        }
        try fetch(codeURL, sha256: codeSha, to: dir + "/code.tar", http: http, what: "the code archive")
        try Tar.extract(dir + "/code.tar", into: repo)
        unlink(dir + "/code.tar")
        if let overlay = t["overlay"], let u = overlay["url"]?.stringValue, let sha = overlay["sha256"]?.stringValue {
            for gone in overlay["deleted"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
                unlink(repo + "/" + (try Tar.safePath(gone, archive: "the overlay")))
            }
            try fetch(u, sha256: sha, to: dir + "/overlay.tar", http: http, what: "the uncommitted changes (--allow-dirty)")
            // The overlay replaces files from the commit: remove them first (extraction never overwrites).
            let listing = dir + "/overlay-list"
            try FileIO.makeDirectory(listing)
            let names = try Tar.extract(dir + "/overlay.tar", into: listing)
            for f in names.files + names.links { unlink(repo + "/" + f) }
            FileIO.removeTree(listing)
            try Tar.extract(dir + "/overlay.tar", into: repo)
            unlink(dir + "/overlay.tar")
        }
        for input in t["inputs"]?.arrayValue ?? [] {
            guard let path = input["path"]?.stringValue, let u = input["url"]?.stringValue, let sha = input["sha256"]?.stringValue else {
                continue
            }
            let rel = try Tar.safePath(path, archive: "the task's inputs")
            try Tar.makeParents(repo, rel)
            unlink(repo + "/" + rel)
            try fetch(u, sha256: sha, to: repo + "/" + rel, http: http, what: "input \(rel)")
        }
        var env: [String: String] = (t["env"]?.objectValue ?? [:]).compactMapValues(\.stringValue)
        if let u = t["secrets_url"]?.stringValue {
            let secrets = try JSONParser.parse(try PresignedTransfer.get(u, http: http)).objectValue ?? [:]
            for (k, v) in secrets { if let s = v.stringValue { env[k] = s } }
        }
        // The placeholder task folder becomes this scratch folder wherever a path names it.
        func mapped(_ s: String) -> String {
            s == placeholder || s.hasPrefix(placeholder + "/") ? dir + s.dropFirst(placeholder.count) : s
        }
        func mappedJSON(_ v: JSONValue) -> JSONValue {
            switch v {
            case .string(let s): return .string(mapped(s))
            case .array(let a): return .array(a.map(mappedJSON))
            case .object(let o): return .object(o.mapValues(mappedJSON))
            default: return v
            }
        }
        var spec = TaskSpec(
            runId: t["run_id"]?.stringValue ?? "", key: t["key"]?.stringValue ?? "", name: t["name"]?.stringValue ?? "", taskDir: dir,
            argv: (t["argv"]?.arrayValue ?? []).compactMap(\.stringValue).map(mapped), env: env.mapValues(mapped),
            workdir: mapped(t["workdir"]?.stringValue ?? placeholder + "/repo"),
            outputs: t["outputs"]?.arrayValue?.compactMap(\.stringValue), timeout: t["timeout"]?.numberValue,
            configJSON: mappedJSON(t["config"] ?? .object([:])))
        guard !spec.argv.isEmpty else { throw ConfigError("the task has no command") }
        spec.secretNames = []
        try spec.stage(writeSpec: false)
        return spec
    }

    /// Downloads to `path` and checks the bytes: a mismatch is an error, never a run on them.
    static func fetch(_ url: String, sha256: String, to path: String, http: HTTPClient, what: String) throws {
        try PresignedTransfer.download(url, to: path, http: http)
        let (got, _) = try Hashing.sha256OfFile(atPath: path)
        guard got == sha256 else {
            unlink(path)
            throw ExecutionError("\(what) downloaded with SHA-256 \(got.prefix(12)), not the staged \(sha256.prefix(12)); it was altered in storage")
        }
    }
}
