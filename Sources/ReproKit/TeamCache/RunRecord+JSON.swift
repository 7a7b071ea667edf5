import Foundation
import ReproSupport
import ReproStore

extension RunRecord {
    /// Rebuilds a record from its JSON (`RunRecord.json`), as a team cache manifest carries it.
    /// Strict: a missing or mistyped field is an error naming it, never a default, so a
    /// malformed manifest cannot slip a half-empty record into the store.
    public init(json v: JSONValue, source: String) throws(ConfigError) {
        func need(_ k: String) throws(ConfigError) -> JSONValue {
            guard let x = v[k] else { throw ConfigError(at: source, "the run record has no '\(k)'") }
            return x
        }
        func text(_ k: String) throws(ConfigError) -> String {
            guard let s = try need(k).stringValue else { throw ConfigError(at: source, "the run record's '\(k)' is not a string") }
            return s
        }
        func optText(_ k: String) throws(ConfigError) -> String? {
            guard let x = v[k], x != .null else { return nil }
            guard let s = x.stringValue else { throw ConfigError(at: source, "the run record's '\(k)' is not a string") }
            return s
        }
        func int(_ k: String) throws(ConfigError) -> Int64 {
            guard let i = try need(k).intValue else { throw ConfigError(at: source, "the run record's '\(k)' is not a whole number") }
            return i
        }
        func optDouble(_ k: String) throws(ConfigError) -> Double? {
            guard let x = v[k], x != .null else { return nil }
            guard let d = x.numberValue else { throw ConfigError(at: source, "the run record's '\(k)' is not a number") }
            return d
        }
        func strings(_ k: String) throws(ConfigError) -> [String] {
            guard let a = try need(k).arrayValue else { throw ConfigError(at: source, "the run record's '\(k)' is not a list") }
            return a.compactMap(\.stringValue)
        }
        func files(_ k: String, nameKey: String) throws(ConfigError) -> [(String, String, Int64)] {
            guard let a = try need(k).arrayValue else { throw ConfigError(at: source, "the run record's '\(k)' is not a list") }
            var out: [(String, String, Int64)] = []
            for item in a {
                guard let n = item[nameKey]?.stringValue, let h = item["sha256"]?.stringValue, Hashing.isSHA256Hex(h),
                    let size = item["size"]?.intValue, size >= 0
                else { throw ConfigError(at: source, "an entry of the run record's '\(k)' lacks \(nameKey), sha256 or size") }
                out.append((n, h, size))
            }
            return out
        }
        let statusText = try text("status")
        guard let status = RunStatus(rawValue: statusText) else { throw ConfigError(at: source, "unknown run status '\(statusText)'") }
        /// A structured part: absent or null is nil; present it must read as its type.
        func part<T>(_ k: String, _ make: (JSONValue) -> T?) throws(ConfigError) -> T? {
            guard let x = v[k], x != .null else { return nil }
            guard let t = make(x) else { throw ConfigError(at: source, "the run record's '\(k)' lacks fields it must have") }
            return t
        }
        func code() throws(ConfigError) -> RecordedCode {
            guard let c = try part("code", RecordedCode.init(json:)) else { throw ConfigError(at: source, "the run record has no 'code'") }
            return c
        }
        func env() throws(ConfigError) -> [String: String] {
            guard let m = RunRecord.environment(json: try need("env")) else {
                throw ConfigError(at: source, "the run record's 'env' is not a mapping of strings")
            }
            return m
        }
        self.init(
            runId: try text("run_id"), key: try text("key"), name: try text("name"), specPath: try text("spec"),
            configHash: try text("config_hash"), config: try need("config"), commit: try text("commit"),
            commitSummary: try text("commit_summary"), code: try code(), dirty: v["dirty"] == .bool(true),
            dirtyFiles: try strings("dirty_files"), patchBlob: try optText("patch_blob"), seed: try int("seed"), solver: try need("solver"),
            inputs: try files("inputs", nameKey: "path").map { InputFile(path: $0.0, sha256: $0.1, size: $0.2) }, env: try env(),
            command: try strings("command"), backend: try text("backend"), resources: try need("resources"),
            timeoutS: try optDouble("timeout_s"), host: try text("host"), os: try text("os"), reproVersion: try text("repro_version"),
            executablePath: try optText("executable"), executableSha256: try optText("executable_sha256"), status: status,
            exitCode: v["exit_code"]?.intValue.map { Int32(truncatingIfNeeded: $0) }, message: try optText("message"), pid: nil,
            startedAt: try text("started_at"), finishedAt: try optText("finished_at"), durationS: try optDouble("duration_s"),
            stdoutBlob: try optText("stdout_blob"), stderrBlob: try optText("stderr_blob"),
            outputs: try files("outputs", nameKey: "name").map { OutputFile(name: $0.0, sha256: $0.1, size: $0.2) }, hitCount: 0)
        user = try optText("user") ?? ""
        jobId = try optText("job_id")
        backendType = try optText("backend_type")
        // Manifests written before attempts were listed held the resubmission count there.
        let oldCount = v["attempts"]?.intValue
        resubmissions = Int(v["resubmissions"]?.intValue ?? oldCount ?? 0)
        attempts = oldCount != nil ? [] : try part("attempts", Attempt.list(json:)) ?? []
        estimate = try part("estimate", RuntimeEstimate.init(json:))
        routing = try part("routing", Routing.init(json:))
        fallback = try part("fallback", Fallback.init(json:))
        cost = try optDouble("cost")
        costEstimate = try optDouble("cost_estimate")
        submitter = try part("submitter", Submitter.init(json:))
        queuedAt = try optText("queued_at")
        interpreter = try part("interpreter", InterpreterInfo.init(json:))
        packagesBlob = try optText("packages_blob")
        // Where it ran on the producer's side means nothing here.
        taskRef = nil
        for (k, h) in [("patch_blob", patchBlob), ("stdout_blob", stdoutBlob), ("stderr_blob", stderrBlob), ("packages_blob", packagesBlob)] {
            if let h, !Hashing.isSHA256Hex(h) { throw ConfigError(at: source, "the run record's '\(k)' is not a SHA-256") }
        }
        guard Hashing.isSHA256Hex(key) else { throw ConfigError(at: source, "the run record's key is not a SHA-256") }
    }
}
