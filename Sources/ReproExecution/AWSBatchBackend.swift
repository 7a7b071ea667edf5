import Foundation
import ReproSupport
import ReproRemote
import ReproStore

/// AWS Batch over its REST API (JSON, Signature V4 for the `batch` service), no SDK. Tasks are
/// staged in S3 (`RemoteStaging`) like every backend that shares no disk; a sweep's points go
/// as one array job whose children read their task from `AWS_BATCH_JOB_ARRAY_INDEX`. The
/// task's manifest in S3 is the completion signal; Batch's job state says whether it still
/// runs, and whether the host was lost (spot reclaimed), in which case repro resubmits the task
/// as a new attempt. Batch's own retries stay off (`retryStrategy.attempts = 1`).
public final class AWSBatchBackend: StagedBackend {
    public let name: String
    public var type: String { Self.typeName }
    public var capabilities: BackendCapabilities { Self.traits }
    public let taskRoot = RemoteStaging.placeholderRoot
    let settings: AWSBatchSettings
    let environment: [String: String]
    let staging: RemoteStaging
    let aws: AWSSettings
    let region: String
    let endpoint: String
    let http = HTTPClient()
    let retry: RetryPolicy
    /// SubmitJob's limit (50 a second per account), kept on this side and cut when throttled:
    /// resubmitting a thousand lost children must not trip it.
    static let submitRate = AdaptiveRate(perSecond: 50)
    /// The largest array AWS Batch accepts.
    static let maxArraySize = 10_000
    /// Job ids DescribeJobs takes per call.
    static let describeLimit = 100
    let grace: ManifestGrace
    private var cancelled = Set<String>()
    /// What ListJobs last said of each array's children, by parent job id (see `poll`).
    var arrays: [String: ArrayChildren] = [:]
    let clock: @Sendable () -> Double
    var pollInterval: Double { settings.pollInterval }

    public init(
        name: String, settings: AWSBatchSettings, store: Store, environment: [String: String], retry: RetryPolicy = RetryPolicy(),
        clock: @escaping @Sendable () -> Double = { Clock.now() }
    ) throws {
        guard let loc = settings.staging else { throw ConfigError(at: settings.origin, key: "backends.\(name)", "needs staging: s3://bucket/prefix") }
        self.name = name
        self.settings = settings
        self.environment = environment
        self.retry = retry
        self.clock = clock
        aws = AWSSettings(environment: environment)
        region = aws.region(configured: settings.region)
        let s3 = try S3Client(settings: aws, region: settings.region, endpoint: settings.endpoint, retry: retry)
        staging = RemoteStaging(store: s3, location: loc, scratch: store.tmpDir + "/remote", worker: settings.staged)
        endpoint = settings.batchEndpoint ?? environment["AWS_ENDPOINT_URL_BATCH"].map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            ?? "https://batch.\(region).amazonaws.com"
        grace = ManifestGrace(seconds: settings.manifestGrace)
    }

    // MARK: - the Batch API

    /// One signed POST to the Batch API; throttling (429, TooManyRequestsException) and 5xx are
    /// retried with backoff, credentials are read per attempt.
    func call(_ action: String, _ body: JSONValue) throws(RemoteError) -> JSONValue {
        let bytes = Array(body.canonical.utf8)
        let path = "/v1/" + action
        guard let u = URLComponents(string: endpoint), let host = u.host else {
            throw RemoteError("the Batch endpoint '\(endpoint)' is not a URL", kind: .client)
        }
        let scheme = u.scheme ?? "https"
        let defaultPort = scheme == "https" ? 443 : 80
        let hostHeader = host + (u.port.map { $0 == defaultPort ? "" : ":\($0)" } ?? "")
        let base = u.path.hasSuffix("/") ? String(u.path.dropLast()) : u.path
        let limiter = action == "submitjob" ? AWSBatchBackend.submitRate : nil
        return try retry.run { (_: Int) throws(RemoteError) -> JSONValue in
            limiter?.acquire()
            let creds = try aws.credentials()
            var headers: [(name: String, value: String)] = [("Host", hostHeader), ("Content-Type", "application/json")]
            headers += SigV4.sign(
                SigV4.Target(method: "POST", host: hostHeader, path: base + path), headers: headers, payloadHash: Hashing.sha256Hex(bytes),
                credentials: creds, region: region, service: "batch", now: clock(), contentSha256Header: false)
            var req = HTTPRequest(method: "POST", url: "\(scheme)://\(hostHeader)\(base)\(path)", headers: headers, body: bytes)
            req.timeout = 60
            let r = try http.perform(req)
            let json = (try? JSONParser.parse(r.body)) ?? .null
            if (200..<300).contains(r.status) {
                limiter?.succeeded()
                return json
            }
            let e = AWSBatchBackend.error(status: r.status, json: json, headers: r.headers, text: r.text, action: action).retrying(after: r.headers)
            if e.kind == .throttled { limiter?.throttled() }
            throw e
        }
    }

    /// Batch's error documents: `__type` or the `x-amzn-ErrorType` header, and `message`.
    static func error(status: Int, json: JSONValue, headers: [String: String], text: String, action: String) -> RemoteError {
        let header = headers["x-amzn-errortype"]
        let type = (json["__type"]?.stringValue ?? header ?? "").split(separator: ":").first.map(String.init) ?? ""
        let message = json["message"]?.stringValue ?? json["Message"]?.stringValue ?? String(text.prefix(200))
        let what = "AWS Batch \(action): \(type.isEmpty ? "HTTP \(status)" : type): \(message)"
        if status == 429 || type.contains("TooManyRequests") || type.contains("Throttling") {
            return RemoteError(what, kind: .throttled, httpStatus: status)
        }
        if type.contains("ExpiredToken") || type.contains("UnrecognizedClient") || type.contains("InvalidSignature")
            || type.contains("AccessDenied") || status == 401 || status == 403
        {
            return RemoteError(
                what + " (the AWS credentials are missing, expired or not allowed: refresh them, e.g. `aws sso login`, and check the IAM policy in docs/backends.md)",
                kind: .auth, httpStatus: status)
        }
        if status >= 500 { return RemoteError(what, kind: .server, httpStatus: status) }
        return RemoteError(what, kind: .client, httpStatus: status)
    }

    // MARK: - Backend

    public func preflight() throws {
        _ = try aws.credentials()
    }

    /// The job's container overrides: the worker command, its environment, vCPUs and memory.
    func overrides(seal: TaskSeal, resources: [String: JSONValue]) throws -> JSONValue {
        var requirements: [JSONValue] = []
        for (k, v) in resources.sorted(by: { $0.key < $1.key }) {
            let text = try SlurmBackend.resourceValue(k, v)
            switch k {
            case "cpus": requirements.append(["type": "VCPU", "value": .string(text)])
            case "memory":
                guard let mb = SlurmREST.megabytes(text) else { throw ConfigError("resources.memory '\(text)' is not a size such as 8G") }
                requirements.append(["type": "MEMORY", "value": .string(String(mb))])
            case "gpus": requirements.append(["type": "GPU", "value": .string(text)])
            case "time": continue  // the job timeout, below
            default:
                throw ConfigError("resources.\(k) has no AWS Batch equivalent; use cpus, memory, gpus or time (queues stand for partitions)")
            }
        }
        var o: [String: JSONValue] = [
            // The task's URL, digest and key in the environment (`TaskSeal`), never in the command.
            "command": .array([.string(settings.reproPath), "exec-task"]),
            "environment": .array(
                [["name": "TMPDIR", "value": .string(settings.scratch)], ["name": "LANG", "value": "C.UTF-8"]]
                    + seal.environment.map { ["name": .string($0.name), "value": .string($0.value)] }),
        ]
        if !requirements.isEmpty { o["resourceRequirements"] = .array(requirements) }
        return .object(o)
    }

    func submitJob(seal: TaskSeal, count: Int, name: String, resources: [String: JSONValue], timeout: Double?) throws -> String {
        var body: [String: JSONValue] = [
            "jobName": .string(AWSBatchBackend.jobName(name)),
            "jobQueue": .string(settings.jobQueue), "jobDefinition": .string(settings.jobDefinition),
            "containerOverrides": try overrides(seal: seal, resources: resources),
            // repro retries lost tasks itself, each as a recorded attempt.
            "retryStrategy": ["attempts": 1],
        ]
        if count > 1 { body["arrayProperties"] = ["size": .int(Int64(count))] }
        var limit = timeout.map { $0 + 60 }
        if let t = resources["time"], let s = DurationText.seconds(try SlurmBackend.resourceValue("time", t)) { limit = s }
        if let limit { body["timeout"] = ["attemptDurationSeconds": .int(Int64(max(60, limit.rounded(.up))))] }
        let answer = try submitCall(.object(body))
        guard let id = answer["jobId"]?.stringValue, !id.isEmpty else {
            throw RemoteError("AWS Batch accepted the job but gave no jobId: \(answer.canonical.prefix(200))", kind: .server)
        }
        return id
    }

    /// A name Batch takes: `repro-` and the spec's name with every character outside
    /// `[A-Za-z0-9_-]` dropped (letters with accents, CJK and spaces included), at most 128.
    static func jobName(_ name: String) -> String {
        let kept = name.unicodeScalars.filter { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_") }
        return String(("repro-" + String(String.UnicodeScalarView(kept))).prefix(128))
    }

    /// SubmitJob; a queue Batch does not know is named with the setting to fix.
    func submitCall(_ body: JSONValue) throws(RemoteError) -> JSONValue {
        do {
            return try call("submitjob", body)
        } catch {
            guard error.kind == .client, error.message.lowercased().contains("queue") else { throw error }
            throw RemoteError(
                "\(error.message) Check backends.\(name).job_queue '\(settings.jobQueue)' (`aws batch describe-job-queues` lists them, in region \(region))",
                kind: .client, httpStatus: error.httpStatus)
        }
    }

    func resubmitJob(runId: String, attempt: Int, seal: TaskSeal, name: String, resources: [String: JSONValue], timeout: Double?) throws -> String {
        try submitJob(seal: seal, count: 1, name: name, resources: resources, timeout: timeout)
    }

    public func submit(_ tasks: [TaskSpec], refs: [String], resources: [String: JSONValue]) throws -> [TaskHandle] {
        guard !tasks.isEmpty else { return [] }
        var handles: [TaskHandle] = []
        var start = 0
        while start < tasks.count {
            let chunk = Array(tasks[start..<min(tasks.count, start + AWSBatchBackend.maxArraySize)])
            start += chunk.count
            // An array job needs at least 2 children; one task is a plain job.
            let job = try submitJob(seal: try seal(for: chunk, resources: resources), count: chunk.count, name: chunk[0].name, resources: resources, timeout: chunk[0].timeout)
            for (i, t) in chunk.enumerated() {
                handles.append(TaskHandle(runId: t.runId, ref: staging.ref(t.runId), jobId: chunk.count > 1 ? "\(job):\(i)" : job))
            }
        }
        return handles
    }

    func withoutManifest(_ h: TaskHandle, job: Job?) -> TaskStatus {
        let id = h.jobId ?? "?"
        if let job, job.status == "FAILED", AWSBatchBackend.hostLost(job.reason) {
            return TaskStatus(phase: .retry, schedulerState: "FAILED: \(job.reason ?? "host lost")")
        }
        if cancelled.contains(id) || cancelled.contains(String(id.split(separator: ":").first ?? "")) {
            var st = TaskStatus(phase: .done, schedulerState: "CANCELLED")
            st.failure = (.interrupted, "AWS Batch job \(id) terminated before it finished", nil)
            return st
        }
        let said = job.map { "AWS Batch says \($0.status)" + ($0.reason.map { " (\($0))" } ?? "") + ($0.exitCode.map { ", exit \($0)" } ?? "") }
            ?? "AWS Batch no longer knows job \(id)"
        return missingManifest(
            h, grace: grace, state: job?.status ?? "UNKNOWN", said: said,
            hint: "does the image of job definition '\(settings.jobDefinition)' have repro at '\(settings.reproPath)'? its log is in CloudWatch, /aws/batch/job",
            exitCode: job?.exitCode)
    }

    public func cancel(_ handles: [TaskHandle]) throws {
        // Terminating an array job's parent stops every child.
        for id in Set(handles.compactMap { $0.jobId?.split(separator: ":").first.map(String.init) }).sorted() {
            cancelled.insert(id)
            _ = try? call("terminatejob", ["jobId": .string(id), "reason": "cancelled by repro"])
        }
    }

    /// An array child is terminated alone (`PARENT:INDEX`), as Batch allows.
    func cancelLost(_ h: TaskHandle) {
        guard let id = h.jobId else { return }
        _ = try? call("terminatejob", ["jobId": .string(id), "reason": "repro: no heartbeat from the task"])
    }

    /// For `repro backends`: the queue exists and is enabled, the bucket is writable.
    public func check() -> [BackendProblem] {
        var problems: [BackendProblem] = []
        do {
            let answer = try call("describejobqueues", ["jobQueues": [.string(settings.jobQueue)]])
            let queues = answer["jobQueues"]?.arrayValue ?? []
            if let q = queues.first {
                if q["state"]?.stringValue == "DISABLED" {
                    problems.append(BackendProblem("job queue '\(settings.jobQueue)' is DISABLED", kind: .configuration))
                }
            } else {
                problems.append(BackendProblem(
                    "backends.\(name).job_queue '\(settings.jobQueue)' does not exist in \(region) (`aws batch describe-job-queues` lists them)",
                    kind: .configuration))
            }
        } catch {
            problems.append(BackendProblem("AWS Batch at \(endpoint)", error))
        }
        do { try staging.store.probe(staging.location) } catch { problems.append(BackendProblem("staging \(staging.location)", error)) }
        return problems
    }
}
