import Foundation
import ReproExecution
import ReproSupport

/// What `verify --perturb` varies, made real on this machine: a locale that exists (generated
/// under the store when the system has none), thread counts that differ from each other, and
/// for each variation that cannot be applied, the reason, for the verdict.
struct Perturbations {
    /// A locale whose decimal separator is a comma: `%f` under it reads "3,50".
    static let locale = "de_DE.UTF-8"

    var variations: [Verifier.Variation]
    /// The thread counts tried (each in a run of its own with every other variation).
    var threadCounts: [Int]
    /// Variations that could not be applied here, with why: the verdict says so.
    var notApplied: [String]

    static func make(storeRoot: String, cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> Perturbations {
        var notApplied: [String] = []
        var localeEnv: [String: String]? = nil
        switch availableLocale(storeRoot: storeRoot) {
        case .success(let env): localeEnv = env
        case .failure(let why): notApplied.append("LANG: \(why)")
        }
        // 1 and 2 at least, the core count, and more than the cores when there are only two:
        // a reduction split into another number of pieces sums in another order.
        var counts = [1, 2, cores]
        if cores <= 2 { counts.append(4) }
        counts = Array(Set(counts)).sorted()
        var vs: [Verifier.Variation] = [
            .init(name: "TZ") { t, _ in t.env["TZ"] = "XST-05:30"; return true },
        ]
        if let localeEnv {
            vs.append(.init(name: "LANG") { t, _ in
                for (k, v) in localeEnv { t.env[k] = v }
                return true
            })
        }
        vs += [
            .init(name: "umask") { t, _ in t.umask = 0o077; return true },
            .init(name: "HOME") { t, _ in t.env["HOME"] = t.taskDir + "/home"; return true },
            .init(name: "env order") { t, _ in t.reverseEnvironment = true; return true },
            .init(name: "output path") { _, _ in true },  // applied by staging under a path with a space
        ]
        return Perturbations(variations: vs, threadCounts: counts, notApplied: notApplied)
    }

    /// The variation that sets every thread-count variable the spec leaves free to `n`.
    static func threads(_ n: Int) -> Verifier.Variation {
        .init(name: "threads=\(n)") { t, spec in
            let free = Verifier.threadVariables.filter { spec.env[$0] == nil }
            for v in free { t.env[v] = String(n) }
            return !free.isEmpty
        }
    }

    /// The environment that selects `locale`: the system's when installed, else one compiled
    /// with localedef into the store (LOCPATH); the failure says what is missing.
    static func availableLocale(storeRoot: String) -> Result<[String: String], LocaleProblem> {
        let base = ["LANG": locale, "LC_ALL": locale]
        if works(base) { return .success(base) }
        let dir = storeRoot + "/locales"
        var env = base
        env["LOCPATH"] = dir
        if works(env) { return .success(env) }
        do {
            try FileIO.makeDirectory(dir)
            let r = try CommandOutput.run(
                ["localedef", "-i", "de_DE", "-f", "UTF-8", dir + "/" + locale], environment: ["PATH": SimulationEnvironment.defaultPath + ":/usr/sbin"],
                timeout: 120)
            if works(env) { return .success(env) }
            let said = r.stderr.split(separator: "\n").first.map(String.init) ?? "exit \(r.status)"
            let why = "\(locale) is not installed and localedef could not make it (\(said)); "
                + "install Debian's `locales` package (or your system's locale data)"
            return .failure(LocaleProblem(why))
        } catch {
            let why = "\(locale) is not installed and could not be made: \(error); "
                + "install Debian's `locales` package (with localedef)"
            return .failure(LocaleProblem(why))
        }
    }

    /// Whether a C program started with `env` gets its locale (glibc's `locale` complains on
    /// stderr when it falls back to C).
    static func works(_ env: [String: String]) -> Bool {
        var e = env
        e["PATH"] = SimulationEnvironment.defaultPath
        guard let r = try? CommandOutput.run(["locale"], environment: e, timeout: 10) else { return false }
        return r.status == 0 && r.stderr.isEmpty
    }

    struct LocaleProblem: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}
