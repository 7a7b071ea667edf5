import Foundation
import ReproExecution
import ReproSupport
import ReproStore

/// Checks a run record that came from elsewhere (a teammate's manifest, a worker's manifest)
/// against itself before it may be stored or served: its key must be the key of its own
/// identity fields, a success must have exited 0, its times must be possible, its output names
/// must be plain relative paths among the declared outputs. A signature says who made a
/// claim, not that the claim is consistent; a trusted key can still sign a wrong record.
enum RecordIntegrity {
    /// How far in the future a time may be (clocks of two machines disagree a little).
    static let clockSkew: Double = 600

    /// Every problem found, in words; empty when the record is consistent.
    static func problems(_ r: RunRecord, now: Double = Clock.now()) -> [String] {
        var out: [String] = []
        if !RunId.isValid(r.runId) { out.append("run id '\(r.runId.prefix(80))' is not a run id (letters, digits, '-', '_', '.'; at most 64)") }
        if !Hashing.isSHA256Hex(r.key) { out.append("key '\(r.key.prefix(80))' is not 64 hex digits") }
        // The config hash is the hash of the config it claims, and the key is the key of the
        // identity it claims (params of another point under this key fail here).
        let configHash = Hashing.sha256Hex(r.config.canonicalBytes)
        if configHash != r.configHash { out.append("config_hash does not match its config") }
        switch expectedKey(r) {
        case nil: out.append("its config lacks the fields its key is computed from")
        case let expected? where expected != r.key:
            out.append("its key \(r.key.prefix(12)) is not the key of its own config, code, seed, solver and inputs (\(expected.prefix(12)))")
        default: break
        }
        if r.status == .succeeded && r.exitCode != 0 {
            out.append("it claims success with exit code \(r.exitCode.map(String.init) ?? "none")")
        }
        for (label, time) in [("started_at", r.startedAt), ("finished_at", r.finishedAt ?? ""), ("queued_at", r.queuedAt ?? "")]
        where !time.isEmpty || label == "started_at" {
            guard let t = Clock.parseISO8601(time) else {
                out.append("\(label) '\(time.prefix(40))' is not a time")
                continue
            }
            if t > now + clockSkew { out.append("\(label) \(time) is in the future") }
        }
        if let s = Clock.parseISO8601(r.startedAt), let f = r.finishedAt.flatMap(Clock.parseISO8601), f + clockSkew < s {
            out.append("it finished (\(r.finishedAt ?? "")) before it started (\(r.startedAt))")
        }
        if let d = r.durationS, !(d.isFinite && d >= 0) { out.append("duration_s \(d) is not a duration") }
        out += outputProblems(r.outputs, declared: r.config["outputs"]?.arrayValue?.compactMap(\.stringValue))
        for h in r.blobHashes where !Hashing.isSHA256Hex(h) { out.append("blob '\(h.prefix(80))' is not a SHA-256") }
        return out
    }

    /// Output names that are not plain relative paths, that repeat, or that no declared output
    /// pattern matches (`declared` nil: the spec kept everything it wrote).
    static func outputProblems(_ outputs: [OutputFile], declared: [String]?) -> [String] {
        var out: [String] = []
        var seen = Set<String>()
        for o in outputs {
            if let why = SafePath.problem(in: o.name) {
                out.append("output '\(Terminal.clean(String(o.name.prefix(200))))' is refused: \(why)")
                continue
            }
            if !seen.insert(o.name).inserted { out.append("output \(o.name) is listed twice") }
            if o.size < 0 { out.append("output \(o.name) has a negative size") }
            if let declared, !declared.contains(where: { OutputCollector.matches($0, o.name) }) {
                out.append("output \(o.name) is not among the declared outputs (\(declared.joined(separator: ", ")))")
            }
        }
        return out
    }

    /// The key of the record's own identity fields, or nil when its config lacks them.
    static func expectedKey(_ r: RunRecord) -> String? {
        guard let config = r.config.objectValue, let command = config["command"]?.arrayValue?.compactMap(\.stringValue),
            let envObject = config["env"]?.objectValue, let solver = config["solver"]?.objectValue,
            r.solver.objectValue == solver
        else { return nil }
        var env: [String: String] = [:]
        for (k, v) in envObject {
            guard let s = v.stringValue else { return nil }
            env[k] = s
        }
        // The seed: the declared one, or the one derived from the config hash.
        let seed: Int64
        switch config["seed"] {
        case .string("auto")?: seed = Hashing.seed(fromHex: r.configHash)
        case let v?: guard let s = v.intValue else { return nil }; seed = s
        case nil: return nil
        }
        guard seed == r.seed else { return nil }
        return Hashing.sha256Hex(
            CacheKey.canonicalRecord(
                configHash: r.configHash, code: r.code.json.canonicalBytes, patchHash: r.patchBlob, seed: seed, solver: solver, inputs: r.inputs,
                env: env, command: command))
    }
}

/// Run ids as repro makes them (`20261207-124124-28b00165aa`), and as they may appear in an
/// object name or a path: nothing else is accepted from outside.
enum RunId {
    static func isValid(_ id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= 64, id.first != ".", id.first != "-" else { return false }
        return id.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F || c == 0x2E
        } && !id.contains("..")
    }
}
