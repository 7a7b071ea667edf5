import Crypto
import Foundation
import ReproSupport

/// The minimal, fixed environment a simulation runs in, so it behaves the same on any machine.
public enum SimulationEnvironment {
    public static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    public static func build(
        spec: SimulationSpec, caller: [String: String], seed: Int64, outdir: String, configFile: String, runId: String,
        key: String, bytecodeDir: String? = nil
    ) -> [String: String] {
        var env: [String: String] = [
            "PATH": caller["PATH"] ?? defaultPath,
            "HOME": caller["HOME"] ?? "/",
            "LANG": "C.UTF-8",
            "TZ": "UTC",
        ]
        for name in spec.envPassthrough {
            if let v = caller[name] { env[name] = v }
        }
        for (k, v) in spec.env { env[k] = v }
        // Python trusts a .pyc whose recorded source mtime (whole seconds) and size match: an
        // edit within the same second that keeps the size runs the OLD bytecode. Bytecode kept
        // per code identity can only have been compiled from that identity's source.
        if let bytecodeDir { env["PYTHONPYCACHEPREFIX"] = bytecodeDir }
        env["REPRO_SEED"] = String(seed)
        // Unset, not empty, when the spec gives none: `os.environ.get('REPRO_RTOL', '1e-6')`
        // must fall back to the simulation's own default.
        if let rtol = spec.solver["rtol"] { env["REPRO_RTOL"] = CommandTemplate.text(rtol) }
        if let atol = spec.solver["atol"] { env["REPRO_ATOL"] = CommandTemplate.text(atol) }
        env["REPRO_OUTDIR"] = outdir
        env["REPRO_CONFIG"] = configFile
        env["REPRO_RUN_ID"] = runId
        env["REPRO_KEY"] = key
        return env
    }

    /// What the run record keeps: per-run REPRO_* paths and ids and the bytecode folder are
    /// left out (the record has them, or they follow from the code identity), and passthrough values (maybe secrets) only as an HMAC-SHA256 under the store's
    /// own random key: two runs of one store can tell whether the value changed, but nobody
    /// holding a copy of the records can test guesses of it offline.
    /// Where Python keeps bytecode for one code identity: under the store, so nothing is
    /// written into the work tree, and a new identity starts with none.
    /// `patch`: the uncommitted changes a dirty run includes (each edit is its own identity).
    public static func bytecodeDir(storeRoot: String, code: JSONValue, patch: [UInt8]?) -> String {
        var bytes = code.canonicalBytes
        if let patch { bytes += [0] + Array(Hashing.sha256Hex(patch).utf8) }
        return storeRoot + "/pycache/" + Hashing.sha256Hex(bytes).prefix(16)
    }

    public static func recorded(_ env: [String: String], passthrough: [String], key: SymmetricKey) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in env where !["REPRO_OUTDIR", "REPRO_CONFIG", "REPRO_RUN_ID", "REPRO_KEY", "PYTHONPYCACHEPREFIX"].contains(k) {
            out[k] = passthrough.contains(k) ? "hmac-sha256:" + Hashing.hmacHex(v, key: key).prefix(16) : v
        }
        return out
    }
}
