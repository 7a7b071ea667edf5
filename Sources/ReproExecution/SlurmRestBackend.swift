import Foundation
import Logging
import ReproSupport
import ReproRemote
import ReproStore

/// SLURM reached over slurmrestd (a cluster in the cloud: AWS PCS, Azure CycleCloud Slurm,
/// Google Cluster Toolkit). The nodes share no disk with this machine: tasks are staged in
/// object storage (`RemoteStaging`), and the batch script holds one presigned URL, from which
/// `repro exec-task` on the node fetches everything else. A task's manifest in the bucket says
/// it finished; the scheduler's state is a liveness hint (is it still queued or running, did
/// the node die, did it time out).
public final class SlurmRestBackend: StagedBackend {
    public let name: String
    public var type: String { Self.typeName }
    public var capabilities: BackendCapabilities { Self.traits }
    public let taskRoot = RemoteStaging.placeholderRoot
    let settings: SlurmRestSettings
    let environment: [String: String]
    let staging: RemoteStaging
    let http = HTTPClient()
    let retry: RetryPolicy
    private var version: String?
    /// A token this backend made (by `token_command` or from `token_key_file`) and when to
    /// make the next: a command runs at most once per token lifetime.
    var madeToken: (value: String, renewAt: Double)?
    var cancelledJobs = Set<String>()
    /// When the scheduler first called a task finished while its manifest was not there yet.
    var awaitingManifest: [String: Double] = [:]
    /// When slurmrestd first failed to answer during polling (nil while it answers).
    private var unreachableSince: Double?
    /// Tasks per job array: `max_array_size`, halved when the cluster refuses an array.
    private var arrayLimit: Int
    private let logger = Logger(label: "repro.backend")
    /// How long polling goes on through manifests alone while slurmrestd does not answer.
    let unreachableLimit: Double
    var pollInterval: Double { settings.pollInterval }

    public init(name: String, settings: SlurmRestSettings, store: Store, environment: [String: String], retry: RetryPolicy = RetryPolicy())
        throws
    {
        guard let loc = settings.staging else { throw ConfigError(at: settings.origin, key: "backends.\(name)", "needs staging: s3://bucket/prefix") }
        // Every request carries the JWT: never in the clear to another machine.
        guard !Redact.isPlainRemoteHTTP(settings.url) else {
            throw ConfigError(
                "\(settings.origin): backends.\(name).url \(Redact.url(settings.url)) is plain http to another machine, and every request carries "
                    + "the SLURM token; use https:// (or an SSH tunnel to 127.0.0.1)")
        }
        self.name = name
        self.settings = settings
        self.environment = environment
        self.retry = retry
        let objects: any ObjectStore
        if loc.scheme == "az" {
            objects = try AzureBlobClient(account: settings.storageAccount ?? "", endpoint: settings.blobEndpoint, environment: environment, retry: retry)
        } else {
            objects = try S3Client(settings: AWSSettings(environment: environment), region: settings.region, endpoint: settings.endpoint, retry: retry)
        }
        staging = RemoteStaging(store: objects, location: loc, scratch: store.tmpDir + "/remote", worker: settings.staged)
        version = settings.apiVersion
        arrayLimit = max(1, settings.maxArraySize)
        unreachableLimit = Double(environment["REPRO_REST_UNREACHABLE_LIMIT"] ?? "") ?? 600
    }

    // MARK: - HTTP

    /// `submission`: an answer that carries a `job_id` is a queued job whatever else it says
    /// (slurmrestd adds error 2068 "Required node not available" to a job it queued for nodes
    /// that are drained, down or powered off, as sbatch prints it as a warning).
    func call(_ method: String, _ path: String, body: JSONValue? = nil, accept404: Bool = false, submission: Bool = false) throws(RemoteError) -> JSONValue {
        try retry.run { (_: Int) throws(RemoteError) -> JSONValue in
            var headers = try authHeaders(token()) + [("Accept", "application/json")]
            if body != nil { headers.append(("Content-Type", "application/json")) }
            var req = HTTPRequest(method: method, url: settings.url + path, headers: headers, body: body.map { Array($0.canonical.utf8) } ?? [])
            req.timeout = 60
            let r = try http.perform(req)
            let json = (try? JSONParser.parse(r.body)) ?? .null
            let errors = SlurmREST.errors(json)
            let what = "slurmrestd \(method) \(path)"
            if (200..<300).contains(r.status) && errors.isEmpty { return json }
            if submission, SlurmREST.intValue(json["job_id"]) != nil { return json }
            let said = errors.isEmpty ? String(r.text.prefix(200)) : errors.joined(separator: "; ")
            // slurmrestd 22.05 answers a token it cannot use with 500 and whatever the failed
            // call says ("Failed while looking for jobs", even "Unable to find JobId"): a 500 is
            // checked against /ping with the same token before it counts as a hiccup or a
            // missing job.
            if r.status >= 500, let refused = tokenRefused(path: path) {
                throw RemoteError(
                    "\(what) was refused: slurmrestd answers every request with this token with HTTP 500 (\(refused)), which is how it "
                        + "rejects a token that is invalid, expired, or for another user than \(settings.user); make a new one with "
                        + "`scontrol token username=\(settings.user) lifespan=86400` and set it again", kind: .auth, httpStatus: r.status)
            }
            if errors.contains(where: { $0.contains("Unable to find") || $0.contains("Invalid job id") }) {
                if accept404 { return json }
                throw RemoteError("\(what): \(said)", kind: .notFound, httpStatus: r.status)
            }
            if r.status == 401 || r.status == 403
                || errors.contains(where: { $0.contains("unable to load") || $0.lowercased().contains("authentication") })
            {
                let fix = settings.tokenKeyFile != nil
                    ? "the token repro minted from token_key_file \(settings.tokenKeyFile ?? "") was refused: is that the cluster's current key, "
                        + "and does the cluster want the user's POSIX identity in it (AWS PCS: token_uid, token_gid, token_gids)?"
                    : "the token may be invalid, expired or for another user than \(settings.user): make one with "
                        + "`scontrol token username=\(settings.user)`"
                throw RemoteError("\(what) was refused (HTTP \(r.status): \(said)); \(fix)", kind: .auth, httpStatus: r.status)
            }
            if r.status >= 500 { throw RemoteError("\(what): HTTP \(r.status): \(said)", kind: .server, httpStatus: r.status).retrying(after: r.headers) }
            throw RemoteError("\(what): HTTP \(r.status): \(said)", kind: .client, httpStatus: r.status)
        }
    }

    /// Whether slurmrestd refuses the token itself: /ping (which any valid token may call)
    /// answers 500 too. Returns what it said, or nil when ping works (a genuine server error)
    /// or cannot tell.
    func tokenRefused(path: String) -> String? {
        let parts = path.split(separator: "/")
        guard parts.count >= 2, parts[0] == "slurm", let t = try? token() else { return nil }
        var req = HTTPRequest(
            method: "GET", url: settings.url + "/slurm/\(parts[1])/ping",
            headers: authHeaders(t) + [("Accept", "application/json")])
        req.timeout = 20
        guard let r = try? http.perform(req), r.status >= 500 else { return nil }
        let errors = SlurmREST.errors((try? JSONParser.parse(r.body)) ?? .null)
        return "ping: " + (errors.isEmpty ? "HTTP \(r.status)" : errors.joined(separator: "; "))
    }

    /// The API version: configured, else the newest the server offers.
    func apiVersion() throws(RemoteError) -> String {
        if let v = version { return v }
        let doc = try call("GET", "/openapi/v3")
        guard let v = SlurmREST.pickVersion(openapi: doc) else {
            throw RemoteError(
                "slurmrestd at \(Redact.url(settings.url)) offers none of the API versions repro speaks (\(SlurmREST.supported.joined(separator: ", "))); "
                    + "start it with -s openapi/v0.0.40 (or v0.0.38), or set api_version", kind: .client)
        }
        version = v
        return v
    }

    // MARK: - Backend

    public func preflight() throws {
        _ = try token()
        try staging.store.checkCredentials()
    }

    public func submit(_ tasks: [TaskSpec], refs: [String], resources: [String: JSONValue]) throws -> [TaskHandle] {
        guard !tasks.isEmpty else { return [] }
        let request = try jobRequest(resources: resources, timeout: tasks.first?.timeout, name: tasks[0].name)
        var handles: [TaskHandle] = []
        var start = 0
        while start < tasks.count {
            let chunk = Array(tasks[start..<min(tasks.count, start + arrayLimit)])
            let job: String
            do {
                job = try submitJob(request, seal: try seal(for: chunk, resources: resources), count: chunk.count)
            } catch let error as RemoteError where chunk.count > 1 && error.message.contains("Invalid job array specification") {
                // The cluster's MaxArraySize is below max_array_size (slurmrestd does not say
                // it): smaller arrays from here on, for this backend's life.
                arrayLimit = max(1, chunk.count / 2)
                logger.notice("\(name): the cluster refused an array of \(chunk.count) (MaxArraySize is lower); submitting arrays of \(arrayLimit)")
                continue
            }
            start += chunk.count
            for (i, t) in chunk.enumerated() {
                handles.append(TaskHandle(runId: t.runId, ref: staging.ref(t.runId), jobId: chunk.count > 1 ? "\(job)_\(i)" : job))
            }
        }
        return handles
    }

    /// The batch script: fixed text, the user's `setup:` lines, and the single-quoted repro
    /// path. The task's URL, digest and key go in the job's environment (`TaskSeal`): never on
    /// the worker's command line, which `ps` shows every user of the node. Every option is a
    /// JSON field, read by no shell.
    ///
    /// A worker that cannot start (a setup line failed; the repro binary does not run on the
    /// node's OS, the loader saying why) uploads nothing, and the job's log stays on the node:
    /// the script puts the reason in the job's comment, which the submitter reads through
    /// slurmrestd (`workerCommentPrefix`).
    static func script(reproPath: String, setup: [String] = []) throws(ConfigError) -> String {
        if reproPath.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw ConfigError("repro_path contains a control character; use one without")
        }
        let repro = SlurmBackend.shellQuote(reproPath)
        var lines = [
            "#!/bin/sh",
            "# generated by repro: runs its task(s) through `repro exec-task`, fetching everything from object storage",
            "repro_cannot_start() {",
            "  echo \"repro: $1\" >&2",
            "  scontrol update JobId=\"$SLURM_JOB_ID\" Comment=\"\(workerCommentPrefix)$(printf '%s' \"$1\" | tr '\\n\\t' '  ' | cut -c1-600)\" >/dev/null 2>&1",
            "  exit 97",
            "}",
        ]
        for (i, line) in setup.enumerated() {
            if line.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                throw ConfigError("setup line \(i + 1) contains a control character; write one line per item")
            }
            lines.append("\(line) || repro_cannot_start \"setup line \(i + 1) failed (exit $?): \"\(SlurmBackend.shellQuote(line))")
        }
        lines.append("repro_out=$(\(repro) --version 2>&1) || repro_cannot_start \"\"\(repro)\" cannot start on $(hostname) ($(uname -sm)): $repro_out\"")
        lines.append("exec \(repro) exec-task")
        return lines.joined(separator: "\n") + "\n"
    }

    /// How the job script marks a worker that could not start, in the job's comment.
    static let workerCommentPrefix = "repro-worker: "

    func jobRequest(resources: [String: JSONValue], timeout: Double?, name: String) throws -> SlurmREST.JobRequest {
        var r = SlurmREST.JobRequest(
            script: "", name: "repro-" + name.filter { $0.isLetter || $0.isNumber || "-_.".contains($0) }, array: nil,
            workdir: settings.scratch, environment: ["PATH": SimulationEnvironment.defaultPath, "LANG": "C.UTF-8", "TMPDIR": settings.scratch],
            timeLimitMinutes: nil, cpus: nil, memoryMB: nil, partition: settings.partition, account: nil, qos: nil,
            standardOutput: settings.scratch + "/repro-slurm-%j.log")
        for (k, v) in resources {
            let text = try SlurmBackend.resourceValue(k, v)
            switch k {
            case "cpus": r.cpus = Int(text)
            case "memory":
                guard let mb = SlurmREST.megabytes(text) else { throw ConfigError("resources.memory '\(text)' is not a size such as 8G") }
                r.memoryMB = mb
            case "time":
                guard let s = DurationText.seconds(text) else { throw ConfigError("resources.time '\(text)' is not a duration such as 2h") }
                r.timeLimitMinutes = Int((s / 60).rounded(.up))
            case "partition": r.partition = text
            case "account": r.account = text
            case "qos": r.qos = text
            default:
                throw ConfigError("resources.\(k) is not supported by the slurm-rest backend yet; use cpus, memory, time, partition, account or qos")
            }
        }
        if r.timeLimitMinutes == nil, let t = timeout { r.timeLimitMinutes = Int((t / 60).rounded(.up)) + 1 }
        return r
    }

    func submitJob(_ request: SlurmREST.JobRequest, seal: TaskSeal, count: Int) throws -> String {
        var r = request
        r.script = try SlurmRestBackend.script(reproPath: settings.reproPath, setup: settings.setup)
        for (k, v) in seal.environment { r.environment[k] = v }
        if count > 1 { r.array = "0-\(count - 1)" + (settings.maxParallel > 0 ? "%\(settings.maxParallel)" : "") }
        let v = try apiVersion()
        let answer = try call("POST", "/slurm/\(v)/job/submit", body: SlurmREST.submitBody(r, version: v), submission: true)
        guard let job = SlurmREST.intValue(answer["job_id"]) else {
            throw RemoteError("slurmrestd accepted the job but gave no job_id: \(answer.canonical.prefix(200))", kind: .server)
        }
        return String(job)
    }

    public func poll(_ handles: [TaskHandle]) throws -> [String: TaskStatus] {
        var jobs: [String: SlurmREST.Job] = [:]
        var reachable = true
        let arrays = Set(handles.compactMap { $0.jobId?.split(separator: "_").first.map(String.init) })
        do throws(RemoteError) {
            let v = try apiVersion()
            for a in arrays.sorted() {
                for j in SlurmREST.parseJobs(try call("GET", "/slurm/\(v)/job/\(a)", accept404: true)) { jobs[j.id] = j }
            }
            unreachableSince = nil
        } catch {
            guard error.isTransient else { throw error }
            // The scheduler is only a liveness hint: go on through the manifests for a while.
            reachable = false
            let since = unreachableSince ?? Clock.monotonic()
            unreachableSince = since
            if Clock.monotonic() - since > unreachableLimit {
                throw RemoteError(
                    "slurmrestd at \(Redact.url(settings.url)) has not answered for \(DurationText.format(Clock.monotonic() - since)) (\(error.message)); "
                        + "the submitted jobs may still run: `repro wait` picks them up once it answers", kind: error.kind)
            }
        }
        var out: [String: TaskStatus] = [:]
        for h in handles {
            let job = h.jobId.flatMap { jobs[$0] }
            let phase = job.map { SlurmStates.phase($0.state).0 }
            // Queued or running on the scheduler's word: no need to ask the bucket yet.
            if let job, let phase, phase == .queued || phase == .running {
                // Why it waits (ReqNodeNotAvail, Resources, PartitionDown...) is what a user
                // watching a queued sweep needs to know.
                let why = phase == .queued && !job.reason.isEmpty && job.reason != "None" ? " (\(job.reason))" : ""
                let node = job.node.isEmpty ? nil : job.node
                out[h.runId] = phase == .running
                    ? running(h, state: job.state, node: node) : TaskStatus(phase: phase, schedulerState: job.state + why, node: node)
                continue
            }
            // Cancelled before it ran anywhere: no worker started, so no manifest is coming (a
            // cancelled 10,000-point sweep asked the bucket 10,000 times for nothing).
            if let job, job.node.isEmpty, job.state.uppercased().hasPrefix("CANCELLED") {
                var st = TaskStatus(phase: .done, schedulerState: job.state)
                st.failure = (.interrupted, "SLURM job \(job.id) CANCELLED before it started", nil)
                st.neverStarted = true
                out[h.runId] = st
                continue
            }
            let manifest = try staging.manifest(runId: h.runId, attempt: h.attempt)
            if let m = manifest {
                awaitingManifest.removeValue(forKey: h.runId)
                out[h.runId] = finished(job: job, manifest: m)
                continue
            }
            guard reachable else {
                out[h.runId] = TaskStatus(phase: .running, schedulerState: "UNREACHABLE")
                continue
            }
            out[h.runId] = withoutManifest(h, job: job)
        }
        return out
    }

    public func cancel(_ handles: [TaskHandle]) throws {
        let v = try apiVersion()
        // An array's tasks go with one request for the array (its tasks that already ended
        // are not affected): a sweep's Ctrl-C is a request per array, not per task.
        for id in Set(handles.compactMap { $0.jobId?.split(separator: "_").first.map(String.init) }).sorted() {
            cancelledJobs.insert(id)
            _ = try? call("DELETE", "/slurm/\(v)/job/\(id)", accept404: true)
        }
    }

    /// An array task (`JOB_INDEX`) is cancelled alone.
    func cancelLost(_ h: TaskHandle) {
        guard let id = h.jobId, let v = try? apiVersion() else { return }
        _ = try? call("DELETE", "/slurm/\(v)/job/\(id)", accept404: true)
    }

    func resubmitJob(runId: String, attempt: Int, seal: TaskSeal, name: String, resources: [String: JSONValue], timeout: Double?) throws -> String {
        try submitJob(try jobRequest(resources: resources, timeout: timeout, name: name), seal: seal, count: 1)
    }

    /// For `repro backends`: slurmrestd answers and accepts the token, the bucket is writable.
    public func check() -> [BackendProblem] {
        var problems: [BackendProblem] = []
        do {
            let v = try apiVersion()
            _ = try call("GET", "/slurm/\(v)/ping")
        } catch {
            problems.append(BackendProblem("slurmrestd at \(Redact.url(settings.url))", error))
        }
        do { try staging.store.probe(staging.location) } catch { problems.append(BackendProblem("staging \(staging.location)", error)) }
        return problems
    }
}
