import Crypto
import Foundation
import ReproSupport

/// What reaches a remote worker through its scheduler rather than through the bucket: the URL
/// of its task (or batch) document, that document's SHA-256, and the submission's MAC key.
/// Anyone who can write to the staging prefix can replace task.json or manifest.json; they
/// cannot change what the scheduler hands the job. So the worker runs only the task.json
/// whose digest it was given, and signs its manifest with a key derived from the submission
/// key and its run id; the submitter keeps the key locally and accepts only manifests whose MAC
/// verifies. The three travel as environment variables of the job (the slurmrestd job, the
/// Batch container, the Azure task), never on a command line that `ps` shows every node user.
public struct TaskSeal: Sendable, Equatable {
    public var url: String
    public var sha256: String
    /// 64 hex digits.
    public var key: String

    public static let urlVariable = "REPRO_TASK_URL"
    public static let digestVariable = "REPRO_TASK_SHA256"
    public static let keyVariable = "REPRO_TASK_KEY"

    public init(url: String, sha256: String, key: String) {
        self.url = url
        self.sha256 = sha256
        self.key = key
    }

    /// The job's environment entries.
    public var environment: [(name: String, value: String)] {
        [(TaskSeal.urlVariable, url), (TaskSeal.digestVariable, sha256), (TaskSeal.keyVariable, key)]
    }

    /// The seal a worker was started with, from its environment.
    public static func from(environment env: [String: String]) throws(ConfigError) -> TaskSeal {
        guard let url = env[urlVariable], !url.isEmpty, let sha = env[digestVariable], Hashing.isSHA256Hex(sha), let key = env[keyVariable],
            Hashing.isSHA256Hex(key)
        else {
            throw ConfigError(
                "repro exec-task without a task file runs a staged task named by \(urlVariable), \(digestVariable) and \(keyVariable) "
                    + "in its environment (set by the backend that submitted it); they are missing or malformed")
        }
        return TaskSeal(url: url, sha256: sha, key: key)
    }

    /// A fresh submission key.
    public static func newKey() -> String {
        var g = SystemRandomNumberGenerator()
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in bytes.indices { bytes[i] = g.next() }
        return Hashing.hex(bytes)
    }

    /// The key one run's manifest is signed with (a batch shares one submission key).
    static func runKey(_ key: String, runId: String) -> SymmetricKey {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(runId.utf8), using: SymmetricKey(data: Array(key.utf8)))
        return SymmetricKey(data: Array(mac))
    }

    /// The MAC of a manifest (its canonical JSON without `mac`).
    static func mac(_ manifest: JSONValue, key: String, runId: String) -> String {
        var o = manifest.objectValue ?? [:]
        o.removeValue(forKey: "mac")
        let code = HMAC<SHA256>.authenticationCode(for: Array(JSONValue.object(o).canonical.utf8), using: runKey(key, runId: runId))
        return Hashing.hex(Array(code))
    }

    /// The manifest with its MAC added (what the worker uploads).
    static func signed(_ manifest: JSONValue, key: String, runId: String) -> JSONValue {
        var o = manifest.objectValue ?? [:]
        o["mac"] = .string(mac(manifest, key: key, runId: runId))
        return .object(o)
    }

    /// Whether a manifest carries the MAC of `key` for `runId` (compared in constant time).
    static func verify(_ manifest: JSONValue, key: String, runId: String) -> Bool {
        guard let given = manifest["mac"]?.stringValue, given.utf8.count == 64 else { return false }
        let expected = mac(manifest, key: key, runId: runId)
        var diff: UInt8 = 0
        for (a, b) in zip(given.utf8, expected.utf8) { diff |= a ^ b }
        return diff == 0
    }
}
