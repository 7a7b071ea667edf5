import Foundation
import ReproExecution
import ReproSupport
import ReproGit

/// Installs, removes and reports repro's git hooks without ever clobbering a user's hook.
public struct HookInstaller {
    public static let hookNames = ["post-commit", "post-checkout", "post-merge", "post-rewrite"]
    static let marker = "# repro-managed hook"
    static let chainSuffix = ".repro-chained"

    /// The state of one hook.
    public enum State: String, Sendable {
        /// repro's hook, nothing chained.
        case installed
        /// repro's hook, running the user's original first.
        case chained
        /// No hook.
        case missing
        /// A hook that is not repro's.
        case foreign
        /// repro's hook from another version of repro.
        case outdated
    }

    public struct HookStatus: Sendable {
        public var name: String
        public var path: String
        public var state: State
        public var json: JSONValue { ["name": .string(name), "path": .string(path), "state": .string(state.rawValue)] }
    }

    public let hooksDir: String

    /// The hooks folder git uses for this repository: `core.hooksPath` when set (relative to the
    /// work tree root, `~` expanded), else the repository's own (right for linked worktrees).
    public init(repo: GitRepository) throws(EnvironmentError) {
        if let configured = repo.configString("core.hooksPath"), !configured.isEmpty {
            var p = configured
            if p.hasPrefix("~/") { p = (ProcessInfo.processInfo.environment["HOME"] ?? "") + p.dropFirst(1) }
            hooksDir = p.hasPrefix("/") ? p : repo.workdir + "/" + p
        } else {
            hooksDir = try repo.hooksDirectory()
        }
    }

    public func status() -> [HookStatus] {
        HookInstaller.hookNames.map { name in
            let path = hooksDir + "/" + name
            return HookStatus(name: name, path: path, state: state(of: path))
        }
    }

    func state(of path: String) -> State {
        guard let data = FileManager.default.contents(atPath: path) else { return .missing }
        let text = String(decoding: data, as: UTF8.self)
        guard text.contains(HookInstaller.marker) else { return .foreign }
        guard HookScript.normalized(text) == HookScript.text else { return .outdated }
        return FileManager.default.fileExists(atPath: path + HookInstaller.chainSuffix) ? .chained : .installed
    }

    /// Installs the four hooks. A foreign hook is renamed to `<name>.repro-chained` (content and
    /// mode untouched) and run by ours. Installing twice changes nothing. `force` replaces a
    /// foreign hook even when a chained one already exists (the foreign one is then kept as
    /// `<name>.repro-chained.<n>` rather than lost).
    /// `reproPath`: the absolute path of the repro installing them, which the hooks call (the
    /// one on PATH when that path is gone).
    public func install(force: Bool, reproPath: String? = nil) throws(EnvironmentError) -> [HookStatus] {
        do {
            try FileManager.default.createDirectory(atPath: hooksDir, withIntermediateDirectories: true)
        } catch {
            throw EnvironmentError("cannot create the hooks folder \(hooksDir): \(error.localizedDescription)")
        }
        for name in HookInstaller.hookNames {
            let path = hooksDir + "/" + name
            let chained = path + HookInstaller.chainSuffix
            let wanted = HookScript.rendered(reproPath: reproPath)
            switch state(of: path) {
            case .installed, .chained:
                // The same script; rewrite only when it names another repro.
                if (FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }) == wanted { continue }
            case .outdated: break
            case .missing: break
            case .foreign:
                if FileManager.default.fileExists(atPath: chained) {
                    guard force else {
                        throw EnvironmentError(
                            "\(path) is not repro's hook and \(chained) already exists; move one of them away, "
                                + "or pass --force to keep both (the newer one as \(name).repro-chained.1)")
                    }
                    var n = 1
                    while FileManager.default.fileExists(atPath: "\(chained).\(n)") { n += 1 }
                    guard rename(path, "\(chained).\(n)") == 0 else {
                        throw EnvironmentError("cannot move \(path) aside: \(FileIO.errnoText())")
                    }
                } else {
                    guard rename(path, chained) == 0 else {
                        throw EnvironmentError("cannot move \(path) to \(chained): \(FileIO.errnoText())")
                    }
                }
            }
            do {
                try FileIO.writeAtomically(Array(wanted.utf8), to: path, sync: false)
            } catch {
                throw EnvironmentError("cannot write \(path): \(error.message)")
            }
            chmod(path, 0o755)
        }
        return status()
    }

    /// Whether the installed hooks will find a repro: the given path, or one on `path` (PATH).
    /// nil when they will; otherwise a warning to show.
    public static func reachabilityWarning(reproPath: String?, path: String) -> String? {
        if let p = reproPath, access(p, X_OK) == 0 { return nil }
        if ChildProcess.resolveExecutable("repro", path: path, workingDirectory: "/") != nil { return nil }
        return "the hooks will not find repro: \(reproPath ?? "(unknown path)") is not executable and no repro is on PATH; "
            + "install repro on PATH, or run `repro hooks install` again with the repro you will keep"
    }

    /// Removes repro's hooks and renames each chained original back: content and mode as before.
    public func uninstall() throws(EnvironmentError) -> [HookStatus] {
        for name in HookInstaller.hookNames {
            let path = hooksDir + "/" + name
            let chained = path + HookInstaller.chainSuffix
            switch state(of: path) {
            case .installed, .chained, .outdated:
                guard unlink(path) == 0 else { throw EnvironmentError("cannot remove \(path): \(FileIO.errnoText())") }
                if FileManager.default.fileExists(atPath: chained) {
                    guard rename(chained, path) == 0 else {
                        throw EnvironmentError("cannot restore \(chained) to \(path): \(FileIO.errnoText())")
                    }
                }
            case .missing, .foreign:
                continue
            }
        }
        return status()
    }
}
