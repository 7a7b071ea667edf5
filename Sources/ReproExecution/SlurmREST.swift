import Foundation
import ReproSupport

/// slurmrestd's API: the differences between the versions repro speaks, in one place, as pure
/// functions (the tests check both shapes; v0.0.38 also runs against the real test cluster).
///
/// - v0.0.38 (SLURM 22.05, Debian 12): `{"script": ..., "job": {"environment": {K: V}, "time_limit": N}}`;
///   `job_state` a string; `exit_code` the raw wait status (exit 3 arrives as 768);
///   array ids plain numbers.
/// - v0.0.40 to v0.0.44 (SLURM 23.11 to 25.11: AWS PCS speaks v0.0.43, CycleCloud v0.0.44): the
///   script inside `job`; `environment` a list of `K=V`; numbers as `{"set": true, "number": N}`;
///   `job_state` a list; `exit_code` `{"status": [...], "return_code": {"number": N}, "signal": {...}}`.
///   The fields repro sends and reads have the same shapes in all of them (checked against
///   SchedMD's models per version: SlurmRESTContractTests).
public enum SlurmREST {
    public static let supported = ["v0.0.38", "v0.0.40", "v0.0.41", "v0.0.42", "v0.0.43", "v0.0.44"]

    /// The newest supported version the server's OpenAPI document offers.
    public static func pickVersion(openapi: JSONValue) -> String? {
        let paths = openapi["paths"]?.objectValue?.keys ?? [:].keys
        return supported.reversed().first { v in paths.contains { $0.hasPrefix("/slurm/\(v)/") } }
    }

    public struct JobRequest: Sendable {
        public var script: String
        public var name: String
        public var array: String?
        public var workdir: String
        public var environment: [String: String]
        public var timeLimitMinutes: Int?
        public var cpus: Int?
        public var memoryMB: Int?
        public var partition: String?
        public var account: String?
        public var qos: String?
        public var standardOutput: String
    }

    static func number(_ n: Int, version: String) -> JSONValue {
        version == "v0.0.38" ? .int(Int64(n)) : ["set": true, "infinite": false, "number": .int(Int64(n))]
    }

    public static func submitBody(_ r: JobRequest, version: String) -> JSONValue {
        var job: [String: JSONValue] = [
            "name": .string(r.name), "current_working_directory": .string(r.workdir), "standard_output": .string(r.standardOutput),
        ]
        if let a = r.array { job["array"] = .string(a) }
        if let t = r.timeLimitMinutes { job["time_limit"] = number(t, version: version) }
        if let c = r.cpus { job["cpus_per_task"] = .int(Int64(c)) }
        if let m = r.memoryMB { job["memory_per_node"] = number(m, version: version) }
        if let p = r.partition { job["partition"] = .string(p) }
        if let a = r.account { job["account"] = .string(a) }
        if let q = r.qos { job["qos"] = .string(q) }
        if version == "v0.0.38" {
            job["environment"] = .object(r.environment.mapValues { .string($0) })
            return ["script": .string(r.script), "job": .object(job)]
        }
        job["environment"] = .array(r.environment.sorted { $0.key < $1.key }.map { .string("\($0.key)=\($0.value)") })
        job["script"] = .string(r.script)
        return ["job": .object(job)]
    }

    /// A number that is plain in v0.0.38 and `{"set", "number"}` later.
    static func intValue(_ v: JSONValue?) -> Int64? {
        if let i = v?.intValue { return i }
        if let o = v?.objectValue, o["set"] != .bool(false) { return o["number"]?.intValue }
        return nil
    }

    public struct Job: Sendable, Equatable {
        /// `ARRAYJOB_INDEX` for an array task, else the job id.
        public var id: String
        public var state: String
        public var exitCode: Int32?
        public var signal: Int32?
        public var node: String
        public var reason: String
        /// The job's comment: where the job script says why its worker could not start.
        public var comment: String = ""
    }

    /// SLURM's "no value" (NO_VAL, and NO_VAL64 truncated): an index that is not set.
    static func isSet(_ n: Int64) -> Bool { n >= 0 && n < 4_294_967_294 }

    /// The indices of an array task string as squeue and slurmrestd write it: "0-9",
    /// "1,3,5-7", "0-8:2", with an optional "%N" throttle. nil when it is not one (or would
    /// name more than `limit` tasks).
    public static func arrayIndices(_ text: String, limit: Int = 1_000_000) -> [Int]? {
        let body = text.split(separator: "%", maxSplits: 1).first.map(String.init) ?? ""
        var out: [Int] = []
        for item in body.split(separator: ",", omittingEmptySubsequences: false) {
            let stepParts = item.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            let step = stepParts.count == 2 ? Int(stepParts[1]) : 1
            let range = stepParts[0].split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            guard let lo = Int(range[0]), let hi = range.count == 2 ? Int(range[1]) : lo, let step, step > 0, lo >= 0, hi >= lo,
                out.count + (hi - lo) / step + 1 <= limit
            else { return nil }
            out += stride(from: lo, through: hi, by: step)
        }
        return out.isEmpty ? nil : out
    }

    /// The `jobs` of a GET /job/ID answer. The tasks of an array that still wait in the queue
    /// come as ONE record (no task id, `array_task_string` "0-N"): it is expanded into a job
    /// per index, so a waiting task is never taken for one the scheduler forgot.
    public static func parseJobs(_ body: JSONValue) -> [Job] {
        (body["jobs"]?.arrayValue ?? []).flatMap { j -> [Job] in
            guard let job = parseJob(j) else { return [] }
            guard let a = intValue(j["array_job_id"]), a != 0, intValue(j["array_task_id"]).map(isSet) != true,
                let text = j["array_task_string"]?.stringValue, let indices = arrayIndices(text)
            else { return [job] }
            return indices.map { i in
                var t = job
                t.id = "\(a)_\(i)"
                return t
            }
        }
    }

    static func parseJob(_ j: JSONValue) -> Job? {
        guard let jobId = intValue(j["job_id"]) else { return nil }
        var id = String(jobId)
        if let a = intValue(j["array_job_id"]), a != 0, let t = intValue(j["array_task_id"]), isSet(t) { id = "\(a)_\(t)" }
        let state: String
        if let s = j["job_state"]?.stringValue {
            state = s
        } else {
            state = j["job_state"]?.arrayValue?.first?.stringValue ?? "UNKNOWN"
        }
        var code: Int32? = nil
        var signal: Int32? = nil
        if let raw = j["exit_code"]?.intValue {
            switch ChildEnd(waitStatus: Int32(truncatingIfNeeded: raw)) {
            case .exited(let c): code = c
            case .signaled(let s): signal = s
            default: break
            }
        } else if let e = j["exit_code"]?.objectValue {
            code = intValue(e["return_code"]).map { Int32(truncatingIfNeeded: $0) }
            signal = intValue(e["signal"]?["id"]).map { Int32(truncatingIfNeeded: $0) }
        }
        return Job(
            id: id, state: state, exitCode: code, signal: signal, node: j["nodes"]?.stringValue ?? "",
            reason: j["state_reason"]?.stringValue ?? "", comment: j["comment"]?.stringValue ?? "")
    }

    /// The error descriptions in an answer's `errors`.
    public static func errors(_ body: JSONValue) -> [String] {
        (body["errors"]?.arrayValue ?? []).compactMap { e in
            let d = e["description"]?.stringValue ?? ""
            let err = e["error"]?.stringValue ?? ""
            let text = [d, err].filter { !$0.isEmpty && $0 != "Unspecified error" }.joined(separator: ": ")
            return text.isEmpty ? nil : text
        }
    }

    /// When a JWT expires (its `exp` claim), if it says.
    public static func tokenExpiry(_ token: String) -> Double? { claims(token)?["exp"]?.numberValue }

    /// The user a SLURM JWT was made for (its `sun` claim), if it says.
    public static func tokenUser(_ token: String) -> String? { claims(token)?["sun"]?.stringValue }

    static func claims(_ token: String) -> JSONValue? {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return nil }
        var b64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64) else { return nil }
        return try? JSONParser.parse(Array(data))
    }

    /// Megabytes from a memory value such as `8G`, `512M` or `1024`.
    public static func megabytes(_ text: String) -> Int? {
        let t = text.uppercased().replacingOccurrences(of: "B", with: "")
        guard let unit = t.last else { return nil }
        if unit.isNumber { return Int(t) }
        guard let n = Double(t.dropLast()) else { return nil }
        switch unit {
        case "K": return max(1, Int((n / 1024).rounded(.up)))
        case "M": return Int(n)
        case "G": return Int(n * 1024)
        case "T": return Int(n * 1024 * 1024)
        default: return nil
        }
    }
}
