import Crypto
import Foundation

/// The minimal, fixed environment a simulation runs in, so it behaves the same on any machine.
public enum SimulationEnvironment {
    public static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    public static func build(
        spec: SimulationSpec, caller: [String: String], seed: Int64, outdir: String, configFile: String, runId: String,
        key: String
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

    /// What the run record keeps: per-run REPRO_* paths and ids are left out (the record has
    /// them), and passthrough values (maybe secrets) only as an HMAC-SHA256 under the store's
    /// own random key: two runs of one store can tell whether the value changed, but nobody
    /// holding a copy of the records can test guesses of it offline.
    public static func recorded(_ env: [String: String], passthrough: [String], key: SymmetricKey) -> JSONValue {
        var out: [String: JSONValue] = [:]
        for (k, v) in env where !["REPRO_OUTDIR", "REPRO_CONFIG", "REPRO_RUN_ID", "REPRO_KEY"].contains(k) {
            out[k] = passthrough.contains(k) ? .string("hmac-sha256:" + Hashing.hmacHex(v, key: key).prefix(16)) : .string(v)
        }
        return .object(out)
    }
}
