import Foundation
import ReproExecution
import ReproSupport

extension SimulationEnvironment {
    /// The environment a spec's run gets: the fixed base, the variables the spec passes through
    /// or sets, and the REPRO_* values the simulation reads.
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
}
