import Foundation
import ReproSupport
import ReproRemote
import ReproStore

/// Azure Batch over its REST API with Shared Key (`AZURE_BATCH_ACCOUNT`,
/// `AZURE_BATCH_ACCESS_KEY`), staging in Azure Blob Storage with the same layout as on S3 and
/// SAS URLs for the workers. A submission is one job on `pool_id` with one task per run, added
/// with AddTaskCollection (at most 100 tasks and under 1 MB a call); the job ends itself once
/// its tasks complete. The task's manifest in Blob Storage is the completion signal. Batch
/// requeues a task whose node was preempted by itself; repro leaves task retries off
/// (`maxTaskRetryCount: 0`) and resubmits a lost task as a new attempt.
public final class AzureBatchBackend: StagedBackend {
    public let name: String
    public var type: String { Self.typeName }
    public var capabilities: BackendCapabilities { Self.traits }
    public let taskRoot = RemoteStaging.placeholderRoot
    public static let apiVersion = "2024-07-01.20.0"
    /// AddTaskCollection's limits.
    static let tasksPerCall = 100
    static let bytesPerCall = 1_000_000
    let settings: AzureBatchSettings
    let environment: [String: String]
    let staging: RemoteStaging
    let http = HTTPClient()
    let retry: RetryPolicy
    let clock: @Sendable () -> Double
    /// Parsed account_url: scheme, host, base path.
    let scheme: String
    let host: String
    let basePath: String
    let grace: ManifestGrace
    private var terminated = Set<String>()
    var pollInterval: Double { settings.pollInterval }

    public init(
        name: String, settings: AzureBatchSettings, store: Store, environment: [String: String], retry: RetryPolicy = RetryPolicy(),
        clock: @escaping @Sendable () -> Double = { Clock.now() }
    ) throws {
        guard let loc = settings.staging else { throw ConfigError(at: settings.origin, key: "backends.\(name)", "needs container") }
        guard let u = URLComponents(string: settings.accountURL), let scheme = u.scheme, let host = u.host else {
            throw ConfigError(at: settings.origin, key: "backends.\(name).account_url", "'\(settings.accountURL)' is not a URL")
        }
        self.name = name
        self.settings = settings
        self.environment = environment
        self.retry = retry
        self.clock = clock
        self.scheme = scheme
        self.host = host + (u.port.map { ":\($0)" } ?? "")
        basePath = u.path.hasSuffix("/") ? String(u.path.dropLast()) : u.path
        let blob = try AzureBlobClient(account: settings.storageAccount, endpoint: settings.blobEndpoint, environment: environment, retry: retry)
        staging = RemoteStaging(store: blob, location: loc, scratch: store.tmpDir + "/remote", worker: settings.staged)
        grace = ManifestGrace(seconds: settings.manifestGrace)
    }

    // MARK: - the Batch API

    func credentials() throws(RemoteError) -> (account: String, key: [UInt8]) {
        guard let account = environment["AZURE_BATCH_ACCOUNT"], !account.isEmpty, let k = environment["AZURE_BATCH_ACCESS_KEY"], !k.isEmpty else {
            throw RemoteError(
                "no Azure Batch credentials for backend '\(name)': set AZURE_BATCH_ACCOUNT and AZURE_BATCH_ACCESS_KEY (Keys in the Batch account's portal page)",
                kind: .auth)
        }
        guard let key = Data(base64Encoded: k) else { throw RemoteError("AZURE_BATCH_ACCESS_KEY is not base64; copy the key again", kind: .auth) }
        return (account, Array(key))
    }

    /// One signed request; throttling (429, 503 ServerBusy) and 5xx are retried with backoff.
    func call(_ method: String, _ path: String, query extra: [(name: String, value: String)] = [], body: JSONValue? = nil, accept: Set<Int> = [])
        throws(RemoteError) -> (status: Int, json: JSONValue)
    {
        let bytes = body.map { Array($0.canonical.utf8) } ?? []
        let fullPath = basePath + path
        let query = [("api-version", AzureBatchBackend.apiVersion)] + extra
        return try retry.run { (_: Int) throws(RemoteError) -> (status: Int, json: JSONValue) in
            let (account, key) = try credentials()
            var headers: [(name: String, value: String)] = [("ocp-date", AzureSharedKey.httpDate(clock())), ("Accept", "application/json")]
            if body != nil || method == "POST" {
                headers.append(("Content-Type", "application/json; odata=minimalmetadata"))
                headers.append(("Content-Length", String(bytes.count)))
            }
            let sts = AzureSharedKey.stringToSign(method: method, headers: headers, headerPrefix: "ocp-", account: account, path: fullPath, query: query)
            headers.append(("Authorization", "SharedKey \(account):\(AzureSharedKey.sign(sts, key: key))"))
            var req = HTTPRequest(
                method: method, url: "\(scheme)://\(host)\(fullPath)?\(SigV4.canonicalQuery(query))", headers: headers, body: bytes)
            req.timeout = 60
            let r = try http.perform(req)
            let json = (try? JSONParser.parse(r.body)) ?? .null
            if (200..<300).contains(r.status) || accept.contains(r.status) { return (r.status, json) }
            throw AzureBatchBackend.error(status: r.status, json: json, text: r.text, what: "Azure Batch \(method) \(path)").retrying(after: r.headers)
        }
    }

    /// Batch's error documents: `{"odata.metadata":..., "code": ..., "message": {"value": ...}}`.
    static func error(status: Int, json: JSONValue, text: String, what: String) -> RemoteError {
        let code = json["code"]?.stringValue ?? ""
        let message = json["message"]?["value"]?.stringValue ?? json["message"]?.stringValue ?? String(text.prefix(200))
        let said = "\(what): HTTP \(status)\(code.isEmpty ? "" : " \(code)"): \(message.split(separator: "\n").first.map(String.init) ?? message)"
        switch status {
        case 401, 403:
            return RemoteError(said + " (AZURE_BATCH_ACCESS_KEY is wrong, rotated or for another account than AZURE_BATCH_ACCOUNT)", kind: .auth, httpStatus: status)
        case 404: return RemoteError(said, kind: .notFound, httpStatus: status)
        case 409: return RemoteError(said, kind: .precondition, httpStatus: status)
        case 429, 503: return RemoteError(said, kind: .throttled, httpStatus: status)
        case 500...: return RemoteError(said, kind: .server, httpStatus: status)
        default: return RemoteError(said, kind: .client, httpStatus: status)
        }
    }

    // MARK: - Backend

    public func preflight() throws {
        _ = try credentials()
        try staging.store.checkCredentials()
    }

    /// A job on the pool, its tasks added in calls of at most 100 tasks and 1 MB, then told to
    /// end once they complete (set after adding: a job without tasks would end at once).
    func submitTasks(_ items: [(id: String, seal: TaskSeal, timeout: Double?)], name: String, resources: [String: JSONValue]) throws -> String {
        for (k, _) in resources where !["cpus", "memory", "time"].contains(k) {
            throw ConfigError("resources.\(k) has no Azure Batch equivalent (the pool's VM size decides); use cpus, memory or time")
        }
        let job = "repro-" + String(name.filter { $0.isLetter || $0.isNumber || $0 == "-" }.prefix(20)) + "-" + HostInfo.newRunId().suffix(12)
        _ = try call(
            "POST", "/jobs",
            body: ["id": .string(job), "poolInfo": ["poolId": .string(settings.poolId)], "onAllTasksComplete": "noaction", "usesTaskDependencies": false])
        var chunk: [JSONValue] = []
        var size = 0
        func flush() throws {
            guard !chunk.isEmpty else { return }
            let (_, answer) = try call("POST", "/jobs/\(job)/addtaskcollection", body: ["value": .array(chunk)])
            let failed = (answer["value"]?.arrayValue ?? []).filter { $0["status"]?.stringValue != "success" }
            if let f = failed.first {
                throw RemoteError(
                    "Azure Batch refused task \(f["taskId"]?.stringValue ?? "?"): \(f["error"]?["message"]?["value"]?.stringValue ?? f.canonical.prefix(200).description)",
                    kind: .client)
            }
            chunk = []
            size = 0
        }
        for item in items {
            var limit = item.timeout.map { $0 + 60 }
            if let t = resources["time"], let s = DurationText.seconds(try SlurmBackend.resourceValue("time", t)) { limit = s }
            var task: [String: JSONValue] = [
                "id": .string(item.id),
                // Not a shell: Batch splits the command line into words. The task's URL, digest and
                // key go in its environment (`TaskSeal`), never on the command line.
                "commandLine": .string("\(settings.reproPath) exec-task"),
                "environmentSettings": .array(
                    [["name": "TMPDIR", "value": .string(settings.scratch)], ["name": "LANG", "value": "C.UTF-8"]]
                        + item.seal.environment.map { ["name": .string($0.name), "value": .string($0.value)] }),
                "constraints": ["maxTaskRetryCount": 0],
            ]
            if let limit { task["constraints"]?.setMaxWallClock(AzureBatchBackend.isoDuration(limit)) }
            let t = JSONValue.object(task)
            let bytes = t.canonical.utf8.count
            if chunk.count == AzureBatchBackend.tasksPerCall || size + bytes > AzureBatchBackend.bytesPerCall - 4096 { try flush() }
            chunk.append(t)
            size += bytes
        }
        try flush()
        _ = try call("PATCH", "/jobs/\(job)", body: ["onAllTasksComplete": "terminatejob"])
        return job
    }

    static func isoDuration(_ seconds: Double) -> String { "PT\(Int(seconds.rounded(.up)))S" }

    /// Azure task ids: letters, digits, '-' and '_', at most 64 characters.
    static func taskId(_ runId: String, attempt: Int) -> String { "r" + runId.filter { $0.isLetter || $0.isNumber || $0 == "-" } + "-a\(attempt)" }

    public func submit(_ tasks: [TaskSpec], refs: [String], resources: [String: JSONValue]) throws -> [TaskHandle] {
        guard !tasks.isEmpty else { return [] }
        // A task of its own for each run (no arrays on Azure Batch): a seal each.
        var items: [(id: String, seal: TaskSeal, timeout: Double?)] = []
        for t in tasks { items.append((AzureBatchBackend.taskId(t.runId, attempt: 0), try seal(for: [t], resources: resources), t.timeout)) }
        let job = try submitTasks(items, name: tasks[0].name, resources: resources)
        return zip(tasks, items).map { TaskHandle(runId: $0.0.runId, ref: staging.ref($0.0.runId), jobId: "\(job)/\($0.1.id)") }
    }

    func resubmitJob(runId: String, attempt: Int, seal: TaskSeal, name: String, resources: [String: JSONValue], timeout: Double?) throws -> String {
        let id = AzureBatchBackend.taskId(runId, attempt: attempt)
        let job = try submitTasks([(id, seal, timeout)], name: name, resources: resources)
        return "\(job)/\(id)"
    }

    struct Task {
        var id: String
        var state: String
        var exitCode: Int32?
        var failure: String?
        var requeues: Int
    }

    static func parseTasks(_ json: JSONValue) -> [String: Task] {
        var out: [String: Task] = [:]
        for t in json["value"]?.arrayValue ?? [] {
            guard let id = t["id"]?.stringValue else { continue }
            let info = t["executionInfo"]
            out[id] = Task(
                id: id, state: t["state"]?.stringValue ?? "unknown", exitCode: info?["exitCode"]?.intValue.map { Int32(truncatingIfNeeded: $0) },
                failure: info?["failureInfo"]?["message"]?.stringValue ?? info?["failureInfo"]?["code"]?.stringValue,
                requeues: Int(info?["requeueCount"]?.intValue ?? 0))
        }
        return out
    }

    public func poll(_ handles: [TaskHandle]) throws -> [String: TaskStatus] {
        var tasks: [String: Task] = [:]
        let jobs = Set(handles.compactMap { $0.jobId?.split(separator: "/").first.map(String.init) })
        for job in jobs.sorted() {
            var query: [(name: String, value: String)] = [("$select", "id,state,executionInfo")]
            while true {
                let (status, page) = try call("GET", "/jobs/\(job)/tasks", query: query, accept: [404])
                if status == 404 { break }
                for (k, v) in AzureBatchBackend.parseTasks(page) { tasks["\(job)/\(k)"] = v }
                guard let next = page["odata.nextLink"]?.stringValue, let skip = URLComponents(string: next)?.queryItems?.first(where: { $0.name == "$skiptoken" })?.value
                else { break }
                query = [("$select", "id,state,executionInfo"), ("$skiptoken", skip)]
            }
        }
        var out: [String: TaskStatus] = [:]
        for h in handles {
            let t = h.jobId.flatMap { tasks[$0] }
            // Upper case like the other schedulers' states (RUNNING, COMPLETED).
            let word = t.map { $0.state.uppercased() + ($0.requeues > 0 ? " (requeued \($0.requeues)x: node preempted)" : "") }
            switch t?.state ?? "" {
            case "active", "preparing":
                out[h.runId] = TaskStatus(phase: .queued, schedulerState: word)
                continue
            case "running":
                out[h.runId] = running(h, state: word)
                continue
            default: break
            }
            if var m = try staging.manifest(runId: h.runId, attempt: h.attempt) {
                grace.found(h.runId)
                let failed = t.map { $0.state == "completed" && (($0.exitCode ?? 0) != 0 || $0.failure != nil) } ?? false
                m = reconciled(
                    m, schedulerFailed: failed,
                    said: "Azure Batch says task \(h.jobId ?? "?") failed (exit \(t?.exitCode.map(String.init) ?? "?")\(t?.failure.map { ", " + $0 } ?? ""))")
                out[h.runId] = TaskStatus(phase: .done, schedulerState: word ?? "completed", node: m.host.isEmpty ? nil : m.host, manifest: m)
                continue
            }
            out[h.runId] = withoutManifest(h, task: t)
        }
        return out
    }

    func withoutManifest(_ h: TaskHandle, task: Task?) -> TaskStatus {
        let id = h.jobId ?? "?"
        if terminated.contains(String(id.split(separator: "/").first ?? "")) {
            var st = TaskStatus(phase: .done, schedulerState: "terminated")
            st.failure = (.interrupted, "Azure Batch job \(id.split(separator: "/").first ?? "") was terminated before the task finished", nil)
            return st
        }
        let said = task.map { "Azure Batch says \($0.state)" + ($0.failure.map { " (\($0))" } ?? "") + ($0.exitCode.map { ", exit \($0)" } ?? "") }
            ?? "Azure Batch no longer knows task \(id)"
        return missingManifest(
            h, grace: grace, state: task?.state.uppercased() ?? "UNKNOWN", said: said,
            hint: "do the nodes of pool '\(settings.poolId)' have repro at '\(settings.reproPath)'? the task's stderr.txt is on the node",
            exitCode: task?.exitCode)
    }

    public func cancel(_ handles: [TaskHandle]) throws {
        for job in Set(handles.compactMap { $0.jobId?.split(separator: "/").first.map(String.init) }).sorted() {
            terminated.insert(job)
            _ = try? call("POST", "/jobs/\(job)/terminate", body: ["terminateReason": "cancelled by repro"], accept: [409])
        }
    }

    /// One task of the job (`JOB/TASK`), not the job.
    func cancelLost(_ h: TaskHandle) {
        let parts = h.jobId?.split(separator: "/").map(String.init) ?? []
        guard parts.count == 2 else { return }
        _ = try? call("POST", "/jobs/\(parts[0])/tasks/\(parts[1])/terminate", accept: [409])
    }

    /// For `repro backends`: the pool exists, the container can be written.
    public func check() -> [BackendProblem] {
        var problems: [BackendProblem] = []
        do {
            let (status, pool) = try call("GET", "/pools/\(settings.poolId)", accept: [404])
            if status == 404 {
                problems.append(BackendProblem(
                    "backends.\(name).pool_id '\(settings.poolId)' does not exist in \(settings.accountURL) (`az batch pool list` lists them)",
                    kind: .configuration))
            } else if let s = pool["state"]?.stringValue, s != "active" {
                // A pool resizing or being deleted comes back, or goes: either way not a typo.
                problems.append(BackendProblem("pool '\(settings.poolId)' is \(s)", kind: .outage))
            }
        } catch {
            problems.append(BackendProblem("Azure Batch at \(settings.accountURL)", error))
        }
        do { try staging.store.probe(staging.location) } catch { problems.append(BackendProblem("staging \(staging.location)", error)) }
        return problems
    }
}

extension JSONValue {
    /// Sets `maxWallClockTime` in a constraints object.
    fileprivate mutating func setMaxWallClock(_ value: String) {
        guard var o = objectValue else { return }
        o["maxWallClockTime"] = .string(value)
        self = .object(o)
    }
}
