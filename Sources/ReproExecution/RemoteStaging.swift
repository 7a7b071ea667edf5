import Foundation
import Synchronization
import ReproSupport
import ReproGit
import ReproRemote

/// Stages tasks in object storage for machines that share no disk with this one, and collects
/// what they leave there. Layout under the staging prefix:
///
/// ```
/// code/TREE.tar                      the commit's tree, through libgit2 (once per commit)
/// cas/sha256/HH/HASH                 inputs and --allow-dirty overlays, by content (once each)
/// tasks/RUN/secrets.json             env_passthrough values (deleted once the run is ingested)
/// tasks/RUN/ATTEMPT/task.json        what the worker reads: the plan with presigned URLs
/// tasks/RUN/ATTEMPT/stdout, stderr   what the worker writes, logs even when the task fails
/// tasks/RUN/ATTEMPT/outputs.tar
/// tasks/RUN/ATTEMPT/heartbeat        rewritten by the worker every heartbeat_interval while it runs
/// tasks/RUN/ATTEMPT/manifest.json    written last, with If-None-Match: the completion signal
/// batches/ID.json                    a job array's task URLs, by array index
/// ```
///
/// Workers get presigned URLs valid for the task's time limit plus a margin: the submitter's
/// keys never leave this machine. Each run's plan (the task without URLs, to issue a new
/// attempt from) stays here too, beside the task keys (`.repro/tmp/remote/plans/`): only the
/// store that submitted a run can authenticate its manifests, so only it resubmits, and a
/// sweep's submission is one upload per task, not two.
public final class RemoteStaging {
    /// S3 or Azure Blob Storage.
    public let store: any ObjectStore
    public let location: S3Location
    /// A local folder for archives being built and files being collected.
    let scratch: String
    /// Seconds a worker's URLs stay valid beyond the task's time limit.
    let urlMargin: Double
    /// The node-side folder under which workers make their scratch folders.
    let nodeScratch: String
    /// How often workers write their heartbeat object.
    let heartbeatInterval: Double
    /// Presigned URLs, or the job's own role (`s3://` URLs the worker signs itself).
    let auth: StagedSettings.StagingAuth
    /// What a worker using its role needs to reach the bucket: `region`, `endpoint`, `part`.
    let roleQuery: String
    /// Warnings for the user, each said once (`takeNotices`).
    private var notices: [String] = []
    private var noticed = Set<String>()
    /// The running tasks' heartbeats, as the submitter last saw them.
    let heartbeats: HeartbeatWatch
    /// Object keys known to exist (uploaded or seen by HEAD in this process).
    private var present: [String: Int64] = [:]
    /// Code archives by commit, once uploaded or found in the bucket.
    private var archives: [String: (tree: String, key: String, sha256: String, size: Int64)] = [:]
    var plans: [String: JSONValue] = [:]
    private var madeDirs = Set<String>()

    /// Task folders on a remote machine are named under this root in argv, env and config;
    /// the worker maps it to its own scratch folder.
    public static let placeholderRoot = "/repro-task"

    /// `worker`: the backend's settings for its workers (URL lifetime, node scratch, heartbeats).
    public init(store: any ObjectStore, location: S3Location, scratch: String, worker: StagedSettings) {
        self.store = store
        self.location = location
        self.scratch = scratch
        self.urlMargin = worker.urlMargin
        self.nodeScratch = worker.scratch
        self.heartbeatInterval = worker.heartbeatInterval
        self.heartbeats = HeartbeatWatch(interval: worker.heartbeatInterval, limit: worker.heartbeatLimit)
        auth = worker.stagingAuth
        var q: [(String, String)] = []
        if let r = worker.region { q.append(("region", r)) }
        if let e = worker.endpoint { q.append(("endpoint", e)) }
        if let p = worker.partSize { q.append(("part", String(p))) }
        roleQuery = q.isEmpty ? "" : "?" + q.map { $0.0 + "=" + SigV4.encode($0.1) }.joined(separator: "&")
    }

    /// Says `text` once to the user (through the dispatcher's log).
    func notice(_ text: String) {
        guard noticed.insert(text).inserted else { return }
        notices.append(text)
    }

    /// The warnings not yet said.
    public func takeNotices() -> [String] {
        defer { notices = [] }
        return notices
    }

    /// The longest a presigned URL may live (Signature V4's limit).
    static let maxURLLifetime = 7 * 86400

    /// How long a task's URLs must work: its time limit, plus `url_margin` for the time it may
    /// wait in the queue; at most 7 days. Temporary credentials end every URL signed with them
    /// when they expire, whatever the URL says: that is warned of, with what to do.
    func urlLifetime(limit: Double?) -> Int {
        let need = (limit ?? 0) + urlMargin
        if need > Double(RemoteStaging.maxURLLifetime) {
            notice(
                "a task may need its URLs for \(DurationText.format(need)) (time limit + url_margin \(DurationText.format(urlMargin))), past the 7 days "
                    + "a presigned URL can live; set staging_auth: job-role so workers use their own role")
        }
        let expires = min(RemoteStaging.maxURLLifetime, Int(need.rounded(.up)))
        if auth == .presigned, let exp = store.credentialExpiry(), exp < Clock.now() + Double(expires) {
            notice(
                "the credentials signing the task URLs expire in \(DurationText.format(max(0, exp - Clock.now()).rounded())), before the "
                    + "\(DurationText.format(Double(expires))) a task may need them (time limit + url_margin): a job still queued then "
                    + "cannot fetch its task or upload its results. Use a role session that lasts long enough (duration_seconds, the "
                    + "role's maximum session duration), or set staging_auth: job-role so workers stage with their job's own role")
        }
        return expires
    }

    /// The URL a worker uses for one object: presigned, or `s3://` for its own role.
    func workerURL(_ method: String, key: String, expires: Int) throws(RemoteError) -> String {
        if auth == .jobRole { return "s3://\(location.bucket)/\(key)" + roleQuery }
        return try store.presign(method, bucket: location.bucket, key: key, expires: expires)
    }

    func runPrefix(_ runId: String) -> String { location.key("tasks/\(runId)") }
    func attemptPrefix(_ runId: String, _ attempt: Int) -> String { runPrefix(runId) + "/\(attempt)" }
    public func ref(_ runId: String) -> String { "\(location.scheme)://\(location.bucket)/\(runPrefix(runId))" }

    /// The run id a reference names.
    static func runId(fromRef ref: String) -> String { String(ref.split(separator: "/").last ?? "") }

    // MARK: - Staging

    /// Uploads what tasks need that is not there yet and their plans; returns their references.
    public func stage(_ tasks: [TaskSpec]) throws -> [String] {
        var objects: [(key: String, body: [UInt8])] = []
        let refs = try tasks.map { t in try stage(t, deferring: &objects) }
        try putAll(objects)
        return refs
    }

    /// Small objects, `width` at a time: each is one round trip to the store (tens of
    /// milliseconds to a cloud's), and one after another they set a sweep's submission pace.
    func putAll(_ objects: [(key: String, body: [UInt8])], width: Int = 8) throws {
        guard objects.count > 1 else {
            for o in objects { try store.put(o.body, bucket: location.bucket, key: o.key) }
            return
        }
        let next = Atomic<Int>(0)
        let failure = Mutex<(any Error)?>(nil)
        let (store, bucket) = (self.store, location.bucket)
        DispatchQueue.concurrentPerform(iterations: min(width, objects.count)) { _ in
            while failure.withLock({ $0 == nil }) {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < objects.count else { return }
                do { try store.put(objects[i].body, bucket: bucket, key: objects[i].key) } catch { failure.withLock { $0 = $0 ?? error } }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Uploads what a task needs that is not there yet, and adds its plan (and secrets) to
    /// `objects` for the caller to upload; returns its reference.
    func stage(_ t: TaskSpec, deferring objects: inout [(key: String, body: [UInt8])]) throws -> String {
        guard let src = t.sources else {
            throw ExecutionError("task \(t.runId) has no sources to upload (a bug: remote backends need TaskSpec.sources)")
        }
        let code = try codeArchive(src)
        var plan = t.json.objectValue ?? [:]
        plan["v"] = 2
        plan["scratch"] = .string(nodeScratch)
        plan["code"] = ["tree": .string(code.tree), "sha256": .string(code.sha256), "size": .int(code.size), "object": .string(code.key)]
        if !src.dirtyFiles.isEmpty { plan["overlay"] = try overlay(src) }
        var inputs: [JSONValue] = []
        for i in src.inputs {
            let key = try putContent(path: src.repoRoot + "/" + i.path, sha256: i.sha256, size: i.size)
            inputs.append(["path": .string(i.path), "sha256": .string(i.sha256), "size": .int(i.size), "object": .string(key)])
        }
        plan["inputs"] = .array(inputs)
        if !t.secretNames.isEmpty {
            let secrets = JSONValue.object(Dictionary(uniqueKeysWithValues: t.secretNames.compactMap { n in t.env[n].map { (n, .string($0)) } }))
            let key = runPrefix(t.runId) + "/secrets.json"
            objects.append((key, Array(secrets.canonical.utf8)))
            plan["secrets_object"] = .string(key)
        }
        let p = JSONValue.object(plan)
        try savePlan(p, runId: t.runId)
        plans[t.runId] = p
        return ref(t.runId)
    }

    /// The commit's tree as a tar archive, uploaded unless the bucket has it.
    func codeArchive(_ src: TaskSources) throws -> (tree: String, key: String, sha256: String, size: Int64) {
        if let a = archives[src.commit] { return a }
        let repo = try GitRepository(discoveringFrom: src.repoRoot)
        try FileIO.makeDirectory(scratch)
        // Per process: two repro commands staging the same commit at once must not share (and
        // delete) one scratch file.
        let file = scratch + "/code-\(src.commit)-\(HostInfo.newRunId()).tar"
        defer { unlink(file) }
        let (tree, _) = try repo.archive(commit: src.commit, to: file)
        let (sha, size) = try Hashing.sha256OfFile(atPath: file)
        let key = location.key("code/\(tree).tar")
        // The same tree makes the same bytes; a different size means an older format.
        if try store.head(bucket: location.bucket, key: key)?.size != size {
            try store.upload(file: file, bucket: location.bucket, key: key)
        }
        archives[src.commit] = (tree, key, sha, size)
        return (tree, key, sha, size)
    }

    /// The working-tree files that differ from the commit, as an archive by content, and the
    /// ones deleted there.
    func overlay(_ src: TaskSources) throws -> JSONValue {
        try FileIO.makeDirectory(scratch)
        let file = scratch + "/overlay-\(HostInfo.newRunId()).tar"
        defer { unlink(file) }
        let writer = try Tar.Writer(path: file)
        var deleted: [JSONValue] = []
        for rel in src.dirtyFiles.sorted() {
            let full = src.repoRoot + "/" + rel
            var st = stat()
            guard lstat(full, &st) == 0 else {
                deleted.append(.string(rel))
                continue
            }
            switch st.st_mode & S_IFMT {
            case S_IFLNK:
                try writer.add(.symlink(path: rel, target: (try? FileManager.default.destinationOfSymbolicLink(atPath: full)) ?? ""))
            case S_IFREG:
                try writer.add(.file(path: rel, executable: st.st_mode & 0o100 != 0, size: Int64(st.st_size), source: .path(full)))
            default: continue
            }
        }
        try writer.finish()
        let (sha, size) = try Hashing.sha256OfFile(atPath: file)
        let key = try putContent(path: file, sha256: sha, size: size)
        return ["sha256": .string(sha), "size": .int(size), "object": .string(key), "deleted": .array(deleted)]
    }

    /// Uploads a file to its content address unless it is there; returns the key.
    func putContent(path: String, sha256: String, size: Int64) throws(RemoteError) -> String {
        let key = location.key("cas/sha256/\(sha256.prefix(2))/\(sha256)")
        if present[key] == size { return key }
        if try store.head(bucket: location.bucket, key: key)?.size != size {
            try store.upload(file: path, bucket: location.bucket, key: key)
        }
        present[key] = size
        return key
    }

    /// Writes an attempt's task.json, with presigned URLs for everything the worker reads and
    /// writes; returns the URL the worker starts from.
    /// A staged run's plan: from this process, else from the bucket (a resubmission by a later
    /// `repro wait`).
    public func plan(runId: String) throws -> JSONValue {
        if let p = plans[runId] { return p }
        let bytes: [UInt8]
        do { bytes = try FileIO.readAll(planPath(runId: runId), limit: 64 << 20) } catch {
            throw ExecutionError(
                "run \(runId)'s plan is not on this machine (\(planPath(runId: runId))): a staged run is resubmitted only from the store that "
                    + "submitted it")
        }
        let p = try JSONParser.parse(bytes)
        plans[runId] = p
        return p
    }

    /// `scratch/NAME`, mode 0700 (task keys and plans), made once per process: a sweep saves
    /// a key and a plan per task.
    func makePrivateDir(_ name: String) throws(StoreError) {
        guard !madeDirs.contains(name) else { return }
        for dir in [scratch, scratch + "/" + name] where mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw StoreError("cannot create \(dir): \(FileIO.errnoText())")
        }
        madeDirs.insert(name)
    }

    func planPath(runId: String) -> String { scratch + "/plans/\(runId).json" }

    func savePlan(_ plan: JSONValue, runId: String) throws(StoreError) {
        try makePrivateDir("plans")
        try FileIO.writeAtomically(Array((plan.pretty + "\n").utf8), to: planPath(runId: runId), sync: false, mode: 0o600)
    }

    /// Writes an attempt's task.json, with presigned URLs for everything the worker reads and
    /// writes; returns the URL the worker starts from and the SHA-256 of the bytes written
    /// (the worker runs only those bytes: see `TaskSeal`).
    public func issue(runId: String, attempt: Int, timeout: Double?) throws -> (url: String, sha256: String) {
        var objects: [(key: String, body: [UInt8])] = []
        let doc = try issue(runId: runId, attempt: attempt, expires: urlLifetime(limit: timeout), deferring: &objects)
        try putAll(objects)
        return doc
    }

    /// Attempt 0 of many tasks at once, their task.json files uploaded side by side.
    public func issueAll(_ tasks: [(runId: String, timeout: Double?)]) throws -> [(url: String, sha256: String)] {
        var objects: [(key: String, body: [UInt8])] = []
        // One lifetime per time limit, not per task: it asks the credentials when they expire.
        var lifetimes: [Double: Int] = [:]
        let docs = try tasks.map { t in
            let limit = t.timeout ?? 0
            let expires = lifetimes[limit] ?? urlLifetime(limit: limit)
            lifetimes[limit] = expires
            return try issue(runId: t.runId, attempt: 0, expires: expires, deferring: &objects)
        }
        try putAll(objects)
        return docs
    }

    func issue(runId: String, attempt: Int, expires: Int, deferring objects: inout [(key: String, body: [UInt8])]) throws
        -> (url: String, sha256: String)
    {
        let plan = try self.plan(runId: runId)
        func get(_ key: String) throws(RemoteError) -> JSONValue { .string(try workerURL("GET", key: key, expires: expires)) }
        func withURL(_ v: JSONValue?) throws(RemoteError) -> JSONValue? {
            guard var o = v?.objectValue, let key = o["object"]?.stringValue else { return v }
            o["url"] = try get(key)
            return .object(o)
        }
        var o = plan.objectValue ?? [:]
        o["attempt"] = .int(Int64(attempt))
        o["code"] = try withURL(o["code"])
        if o["overlay"] != nil { o["overlay"] = try withURL(o["overlay"]) }
        var inputs: [JSONValue] = []
        for i in o["inputs"]?.arrayValue ?? [] { inputs.append(try withURL(i) ?? i) }
        o["inputs"] = .array(inputs)
        if let key = o["secrets_object"]?.stringValue { o["secrets_url"] = try get(key) }
        let a = attemptPrefix(runId, attempt)
        var results: [String: JSONValue] = [:]
        for name in ["stdout", "stderr", "outputs.tar", "manifest.json", "heartbeat"] {
            results[name] = .string(try workerURL("PUT", key: a + "/" + name, expires: expires))
        }
        o["results"] = .object(results)
        o["heartbeat_interval"] = .double(heartbeatInterval)
        let body = Array((JSONValue.object(o).canonical).utf8)
        objects.append((a + "/task.json", body))
        return (try workerURL("GET", key: a + "/task.json", expires: expires), Hashing.sha256Hex(body))
    }

    /// A job array's task URLs and digests, in pages (`batches/ID/N.json`) under a top document
    /// (`batches/ID.json`) listing each page's URL and digest; returns the top's URL and digest.
    /// A child fetches the top and the one page holding its index, each checked against the
    /// digest it was given (the top's from the scheduler, the page's from the top).
    public func batch(_ tasks: [(url: String, sha256: String)], timeout: Double?) throws -> (url: String, sha256: String) {
        let id = HostInfo.newRunId()
        let expires = urlLifetime(limit: timeout)
        let per = RemoteStaging.batchPageSize(tasks.count)
        var pages: [JSONValue] = []
        var objects: [(key: String, body: [UInt8])] = []
        for (n, first) in stride(from: 0, to: tasks.count, by: per).enumerated() {
            let part = tasks[first..<min(tasks.count, first + per)]
            let body = Array(
                JSONValue.object(["v": 3, "first": .int(Int64(first)), "tasks": .array(part.map { ["url": .string($0.url), "sha256": .string($0.sha256)] })])
                    .canonical.utf8)
            let key = location.key("batches/\(id)/\(n).json")
            objects.append((key, body))
            pages.append([
                "first": .int(Int64(first)), "count": .int(Int64(part.count)), "sha256": .string(Hashing.sha256Hex(body)),
                "url": .string(try workerURL("GET", key: key, expires: expires)),
            ])
        }
        try putAll(objects)
        let key = location.key("batches/\(id).json")
        let body = Array(JSONValue.object(["v": 3, "count": .int(Int64(tasks.count)), "pages": .array(pages)]).canonical.utf8)
        try store.put(body, bucket: location.bucket, key: key)
        return (try workerURL("GET", key: key, expires: expires), Hashing.sha256Hex(body))
    }

    /// Tasks per page of a batch: about the square root of the count (at least 16), so a child
    /// downloads two documents of ~sqrt(n) entries (~240 KB at 10,000) instead of all n (13 MB).
    static func batchPageSize(_ count: Int) -> Int {
        max(16, Int(Double(count).squareRoot().rounded(.up)))
    }

    // MARK: - Task keys

    /// Where the MAC key of a run's attempt is kept on this machine (never in the bucket).
    func keyPath(runId: String, attempt: Int) -> String { scratch + "/keys/\(runId).\(attempt)" }

    func saveKey(_ key: String, runId: String, attempt: Int) throws(StoreError) {
        try makePrivateDir("keys")
        try FileIO.writeAtomically(Array(key.utf8), to: keyPath(runId: runId, attempt: attempt), sync: false, mode: 0o600)
    }

    func loadKey(runId: String, attempt: Int) -> String? {
        guard let b = try? FileIO.readAll(keyPath(runId: runId, attempt: attempt), limit: 256) else { return nil }
        let k = String(decoding: b, as: UTF8.self)
        return Hashing.isSHA256Hex(k) ? k : nil
    }
}

extension TaskManifest {
    /// A task's manifest lists its outputs; more than this is not one a worker wrote.
    static let maxBytes: Int64 = 16 << 20

    /// A manifest for a task that never ran far enough to write its own.
    static func failure(runId: String, message: String) -> TaskManifest {
        TaskManifest(
            runId: runId, status: .failed, exitCode: nil, message: message, startedAt: "", finishedAt: "", durationS: 0, host: "",
            os: "", jobId: nil, executablePath: nil, executableSha256: nil, outputs: [])
    }
}
