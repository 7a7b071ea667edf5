import Crypto
import Foundation
import ReproSupport

/// The minimal, fixed environment a simulation runs in, so it behaves the same on any machine.
public enum SimulationEnvironment {
    public static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    /// Where Python keeps bytecode for one code identity: under the store, so nothing is
    /// written into the work tree, and a new identity starts with none.
    /// `patch`: the uncommitted changes a dirty run includes (each edit is its own identity).
    public static func bytecodeDir(storeRoot: String, code: JSONValue, patch: [UInt8]?) -> String {
        var bytes = code.canonicalBytes
        if let patch { bytes += [0] + Array(Hashing.sha256Hex(patch).utf8) }
        return storeRoot + "/pycache/" + Hashing.sha256Hex(bytes).prefix(16)
    }

    /// What the run record keeps: per-run REPRO_* paths and ids and the bytecode folder are
    /// left out (the record has them, or they follow from the code identity), and passthrough
    /// values (maybe secrets) only as an HMAC-SHA256 under the store's own random key: two runs
    /// of one store can tell whether the value changed, but nobody holding a copy of the
    /// records can test guesses of it offline.
    public static func recorded(_ env: [String: String], passthrough: [String], key: SymmetricKey) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in env where !["REPRO_OUTDIR", "REPRO_CONFIG", "REPRO_RUN_ID", "REPRO_KEY", "PYTHONPYCACHEPREFIX"].contains(k) {
            out[k] = passthrough.contains(k) ? "hmac-sha256:" + Hashing.hmacHex(v, key: key).prefix(16) : v
        }
        return out
    }
}
