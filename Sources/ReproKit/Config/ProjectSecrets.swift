import Crypto
import Foundation
import ReproSupport
import ReproGit

/// Settings that decide where secrets and results go, when they come from a committed
/// `.repro.yaml`: a cloned repository must not be able to send a token named by it to a host
/// named by it, read a file through `token_file`, or push the user's patch to its own endpoint.
/// Such settings take effect from a committed file only once the user accepts them
/// (`repro config trust`, recorded in `.repro/trusted-settings` by their digest, so a changed
/// value needs accepting again); from `.repro/config.yaml` or an uncommitted `.repro.yaml` they
/// are the user's own.
public enum ProjectSecrets {
    public struct Setting: Sendable, Equatable {
        /// `backends.cloud.token_env`, `cache.signing_key`, ...
        public var path: String
        public var value: String
        /// file:line
        public var origin: String
    }

    /// Keys of a backend that name a secret or where requests carrying one go, or that run
    /// commands on the user's behalf beyond the simulation (a token command here, setup lines
    /// on the cluster).
    static let backendKeys: Set<String> = [
        "url", "token_env", "token_file", "token_command", "token_key_file", "setup", "endpoint", "account_url", "batch_endpoint",
        "blob_endpoint",
    ]

    /// The sensitive settings in `node` (the committed file), leaving out those `local` sets.
    static func find(in node: SpecNode, notIn local: SpecNode?) -> [Setting] {
        var out: [Setting] = []
        // The whole value (a list's items too): accepting one value never accepts another.
        func value(_ n: SpecNode) -> String {
            switch n {
            case .scalar(let t, _, _): return t
            case .sequence(let items, _): return "[" + items.map(value).joined(separator: "\n") + "]"
            case .mapping(let pairs, _): return "{" + pairs.map { $0.key + ": " + value($0.value) }.joined(separator: "\n") + "}"
            }
        }
        func localHas(_ path: [String]) -> Bool {
            var n = local
            for p in path {
                guard case .mapping(let pairs, _)? = n, let next = pairs.first(where: { $0.key == p })?.value else { return false }
                n = next
            }
            return n != nil
        }
        guard case .mapping(let top, _) = node else { return [] }
        for (k, v) in top {
            switch (k, v) {
            case ("backends", .mapping(let named, _)):
                for (name, b) in named {
                    guard case .mapping(let keys, _) = b else { continue }
                    for (key, val) in keys where backendKeys.contains(key) && !localHas(["backends", name, key]) {
                        out.append(Setting(path: "backends.\(name).\(key)", value: value(val), origin: val.origin.description))
                    }
                }
            case ("remotes", .mapping(let named, _)):
                for (name, r) in named {
                    guard case .mapping(let keys, _) = r else { continue }
                    for (key, val) in keys where key == "endpoint" && !localHas(["remotes", name, key]) {
                        out.append(Setting(path: "remotes.\(name).endpoint", value: value(val), origin: val.origin.description))
                    }
                }
            case ("cache", .mapping(let keys, _)):
                for (key, val) in keys {
                    if key == "signing_key" && !localHas(["cache", "signing_key"]) {
                        out.append(Setting(path: "cache.signing_key", value: value(val), origin: val.origin.description))
                    }
                    if key == "remote", case .mapping(let rk, _) = val, let w = rk.first(where: { $0.key == "write" })?.value,
                        YAMLCore.bool(value(w)) == true, !localHas(["cache", "remote", "write"])
                    {
                        out.append(Setting(path: "cache.remote.write", value: value(w), origin: w.origin.description))
                    }
                }
            default: continue
            }
        }
        return out
    }

    /// One digest per setting: accepting a setting accepts exactly that value at that path (a
    /// setting later moved to .repro/config.yaml leaves the others accepted; a changed one is new).
    static func digest(_ setting: Setting) -> String { Hashing.sha256Hex(setting.path + "=" + setting.value) }

    static func file(storeRoot: String) -> String { storeRoot + "/trusted-settings" }

    static func isAccepted(_ settings: [Setting], storeRoot: String) -> Bool {
        guard let bytes = try? FileIO.readAll(file(storeRoot: storeRoot), limit: 1 << 20) else { return false }
        let accepted = Set(String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init))
        return settings.allSatisfy { accepted.contains(digest($0)) }
    }

    /// Whether `.repro.yaml` is in the repository's HEAD commit (it came with the repository).
    static func isCommitted(repoRoot: String) -> Bool {
        guard let repo = try? GitRepository(discoveringFrom: repoRoot), let head = try? repo.headCommitGit(), let tree = try? head.tree()
        else { return false }
        return (try? tree.entry(atPath: ".repro.yaml")) != nil
    }

    /// The committed settings still waiting to be accepted (empty when there are none).
    public static func pending(storeRoot: String, repoRoot: String) throws(ConfigError) -> [Setting] {
        guard let (committed, local) = try nodes(storeRoot: storeRoot, repoRoot: repoRoot) else { return [] }
        let found = find(in: committed, notIn: local)
        guard !found.isEmpty, isCommitted(repoRoot: repoRoot), !isAccepted(found, storeRoot: storeRoot) else { return [] }
        return found
    }

    /// Accepts the committed settings as they are now (`repro config trust`); returns them.
    public static func accept(storeRoot: String, repo: GitRepository) throws -> [Setting] {
        guard let (committed, local) = try nodes(storeRoot: storeRoot, repoRoot: repo.workdir) else { return [] }
        let found = find(in: committed, notIn: local)
        guard !found.isEmpty else { return [] }
        try FileIO.makeDirectory(storeRoot)
        RepoIgnore.ensure(repo: repo, storeRoot: storeRoot)  // a fresh clone's .repro/ stays out of git status
        var lines = (try? FileIO.readAll(file(storeRoot: storeRoot), limit: 1 << 20)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        if !lines.isEmpty && !lines.hasSuffix("\n") { lines += "\n" }
        for d in found.map(digest) where !lines.contains(d) { lines += d + "\n" }
        try FileIO.writeAtomically(Array(lines.utf8), to: file(storeRoot: storeRoot), mode: 0o600)
        return found
    }

    /// Accepts one value the user gave on the command line (`repro remote add --endpoint`):
    /// what they typed is their word, whoever commits the file afterwards.
    public static func acceptTyped(path: String, value: String, storeRoot: String, repo: GitRepository) throws {
        try FileIO.makeDirectory(storeRoot)
        RepoIgnore.ensure(repo: repo, storeRoot: storeRoot)
        var lines = (try? FileIO.readAll(file(storeRoot: storeRoot), limit: 1 << 20)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let d = digest(Setting(path: path, value: value, origin: "command line"))
        guard !lines.contains(d) else { return }
        if !lines.isEmpty && !lines.hasSuffix("\n") { lines += "\n" }
        try FileIO.writeAtomically(Array((lines + d + "\n").utf8), to: file(storeRoot: storeRoot), mode: 0o600)
    }

    static func nodes(storeRoot: String, repoRoot: String) throws(ConfigError) -> (SpecNode, SpecNode?)? {
        guard let data = FileManager.default.contents(atPath: repoRoot + "/.repro.yaml") else { return nil }
        let committed = try SpecNode.parse(String(decoding: data, as: UTF8.self), file: repoRoot + "/.repro.yaml")
        let local = try FileManager.default.contents(atPath: storeRoot + "/config.yaml").map { (d: Data) throws(ConfigError) -> SpecNode in
            try SpecNode.parse(String(decoding: d, as: UTF8.self), file: storeRoot + "/config.yaml")
        }
        return (committed, local)
    }

    /// What a user is told about settings that wait to be accepted.
    static func message(_ s: [Setting]) -> String {
        let list = s.map { "\($0.path): \(Redact.url($0.value)) (\($0.origin))" }.joined(separator: "; ")
        return "the committed .repro.yaml sets where tokens, keys or results go (\(list)); a repository's committed settings "
            + "may not decide that on their own. Review them and run `repro config trust` to accept them, or set them in "
            + ".repro/config.yaml (not committed)"
    }
}
