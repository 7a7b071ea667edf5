import Foundation
import ReproSupport
import ReproStore

/// Finds and asks the interpreter behind a command, with the answers cached in the store until
/// the interpreter or its package folders change.
public enum InterpreterProbe {
    static let pythonScript = """
        import sys, os, platform, json
        try:
            from importlib import metadata
            pk = sorted({"%s==%s" % (d.metadata["Name"], d.version) for d in metadata.distributions() if d.metadata["Name"]}, key=str.lower)
        except Exception:
            pk = []
        dirs = [p for p in sys.path if p and os.path.isdir(p)]
        base = getattr(sys, "base_prefix", sys.prefix)
        kind = "venv" if sys.prefix != base else ("conda" if os.path.isdir(os.path.join(sys.prefix, "conda-meta")) else "system")
        print(json.dumps({"executable": os.path.abspath(sys.executable), "version": platform.python_version(),
            "implementation": platform.python_implementation(), "packages": pk, "dirs": dirs,
            "prefix": sys.prefix, "base_prefix": base, "environment": kind}))
        """

    /// The language of a program, by its name or its `#!` line; nil when it is not one repro
    /// knows how to ask.
    static func language(of executable: String) -> String? {
        let name = (executable as NSString).lastPathComponent
        if name.hasPrefix("python") { return "python" }
        guard let fh = FileHandle(forReadingAtPath: executable) else { return nil }
        defer { try? fh.close() }
        let head = String(decoding: (try? fh.read(upToCount: 256)) ?? Data(), as: UTF8.self)
        guard head.hasPrefix("#!"), let line = head.split(separator: "\n").first else { return nil }
        return line.contains("python") ? "python" : nil
    }

    /// Probes the interpreter that `executable` (as found on PATH, symlinks NOT resolved: a
    /// venv's python is a link to the base interpreter, and only the link selects the venv) runs under, from
    /// `workdir` with `environment` (pyenv and venvs choose by them). nil when the program is not
    /// an interpreter repro knows, or when asking it failed.
    public static func probe(executable: String, environment: [String: String], workdir: String, store: Store?) -> InterpreterInfo? {
        guard let language = language(of: executable) else { return nil }
        // A script with a python #! line: ask the python on PATH (what `env python3` finds).
        var program = executable
        if !(executable as NSString).lastPathComponent.hasPrefix("python") {
            program = ChildProcess.resolveExecutable("python3", path: environment["PATH"] ?? "", workingDirectory: workdir) ?? executable
        }
        let cacheKey = probeKey(program: program, environment: environment, workdir: workdir)
        if let store, let cached = store.cachedProbe(key: cacheKey) { return cached }
        guard
            let r = try? CommandOutput.run([program, "-c", pythonScript], environment: environment, workingDirectory: workdir, timeout: 30),
            r.status == 0, let j = try? JSONParser.parse(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return nil }
        let info = InterpreterInfo(
            language: language, path: j["executable"]?.stringValue ?? program, version: j["version"]?.stringValue ?? "",
            implementation: j["implementation"]?.stringValue ?? "",
            packages: j["packages"]?.arrayValue?.compactMap(\.stringValue) ?? [], prefix: j["prefix"]?.stringValue ?? "",
            basePrefix: j["base_prefix"]?.stringValue ?? "", environmentKind: j["environment"]?.stringValue ?? "")
        let dirs = (j["dirs"]?.arrayValue?.compactMap(\.stringValue) ?? []) + [info.path]
        store?.cacheProbe(key: cacheKey, info: info, watched: dirs)
        return info
    }

    /// What decides which interpreter and packages a command gets: the program (and its
    /// stat), the variables pyenv, conda and venvs read, and pyenv's version file.
    static func probeKey(program: String, environment: [String: String], workdir: String) -> String {
        var parts = [program, FileIO.statSignature(program)]
        for v in ["PATH", "PYENV_VERSION", "PYENV_ROOT", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME"] {
            parts.append(v + "=" + (environment[v] ?? ""))
        }
        // pyenv's global choice (`pyenv global 3.12`) lives in a file, not in the environment.
        let pyenvRoot = environment["PYENV_ROOT"] ?? ((environment["HOME"] ?? "") + "/.pyenv")
        if let global = try? String(contentsOfFile: pyenvRoot + "/version", encoding: .utf8) { parts.append("pyenv global=" + global) }
        var dir = workdir
        while !dir.isEmpty {
            let f = dir + "/.python-version"
            if let text = try? String(contentsOfFile: f, encoding: .utf8) {
                parts.append(f + "=" + text)
                break
            }
            if dir == "/" { break }
            dir = (dir as NSString).deletingLastPathComponent
        }
        return Hashing.sha256Hex(parts.joined(separator: "\u{0}"))
    }
}
