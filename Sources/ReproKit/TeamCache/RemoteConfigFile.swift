import Foundation
import ReproSupport

/// `repro remote add|remove`: rewrites the `remotes:` section of the project's `.repro.yaml`
/// (committed, so the team shares it) and leaves every other line of the file as written,
/// comments included. The result is parsed before it replaces the file: a change that would
/// make the config unreadable is refused and the file is untouched.
public enum RemoteConfigFile {
    public static func path(repoRoot: String) -> String { repoRoot + "/.repro.yaml" }

    /// The store's own config (`.repro/config.yaml`): remotes there are this clone's, and stay
    /// whatever commit is checked out.
    public static func localPath(storeRoot: String) -> String { storeRoot + "/config.yaml" }

    /// The remotes written in `.repro.yaml` itself (not the local config's).
    public static func remotes(repoRoot: String) throws(ConfigError) -> [RemoteSettings] {
        try remotes(file: path(repoRoot: repoRoot))
    }

    /// The remotes written in one config file.
    public static func remotes(file p: String) throws(ConfigError) -> [RemoteSettings] {
        guard let data = FileManager.default.contents(atPath: p) else { return [] }
        let node = try SpecNode.parse(String(decoding: data, as: UTF8.self), file: p)
        return try StoreConfig.interpret(node).remotes.values.sorted { $0.name < $1.name }
    }

    public static func add(_ r: RemoteSettings, repoRoot: String) throws(ConfigError) {
        try add(r, file: path(repoRoot: repoRoot))
    }

    public static func add(_ r: RemoteSettings, file: String) throws(ConfigError) {
        var list = try remotes(file: file)
        if let existing = list.first(where: { $0.name == r.name }) {
            throw ConfigError(
                "a remote named '\(r.name)' already exists (\(existing.location) at \(existing.origin)); `repro remote remove \(r.name)` first")
        }
        if r.isDefault { for i in list.indices { list[i].isDefault = false } }
        list.append(r)
        try write(list, file: file)
    }

    /// Removes a remote from `.repro.yaml`, or else from the store's own config.
    public static func remove(name: String, repoRoot: String, storeRoot: String? = nil) throws(ConfigError) -> RemoteSettings {
        let files = [path(repoRoot: repoRoot)] + (storeRoot.map { [localPath(storeRoot: $0)] } ?? [])
        var known: [String] = []
        for f in files {
            var list = try remotes(file: f)
            guard let i = list.firstIndex(where: { $0.name == name }) else {
                known += list.map(\.name)
                continue
            }
            let gone = list.remove(at: i)
            try write(list, file: f)
            return gone
        }
        throw ConfigError("no remote named '\(name)' in \(files.joined(separator: " or "))" + (known.isEmpty ? "" : "; configured: \(known.joined(separator: ", "))"))
    }

    static func quoted(_ s: String) -> String { JSONValue.string(s).canonical }

    static func section(_ list: [RemoteSettings]) -> [String] {
        guard !list.isEmpty else { return [] }
        var lines = ["remotes:"]
        for r in list.sorted(by: { $0.name < $1.name }) {
            lines.append("  \(r.name):")
            lines.append("    url: \(quoted(r.location.description))")
            if let e = r.endpoint { lines.append("    endpoint: \(quoted(e))") }
            if let g = r.region { lines.append("    region: \(quoted(g))") }
            if r.isDefault { lines.append("    default: true") }
        }
        return lines
    }

    static func write(_ list: [RemoteSettings], file p: String) throws(ConfigError) {
        let original = FileManager.default.contents(atPath: p).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var lines = original.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        // The section runs from `remotes:` at column 0 to the next line that starts at column 0
        // (a key or a comment about what follows).
        if let start = lines.firstIndex(where: { $0.hasPrefix("remotes:") }) {
            guard lines[start].trimmingCharacters(in: .whitespaces) == "remotes:" else {
                throw ConfigError(
                    "\(p):\(start + 1): `remotes:` is written inline; put each remote on its own lines (remotes:\\n  NAME:\\n    url: ...) so repro can edit it")
            }
            var end = start + 1
            while end < lines.count, lines[end].isEmpty || lines[end].first == " " || lines[end].first == "\t" { end += 1 }
            // Blank lines before the next section belong to it.
            while end > start + 1, lines[end - 1].trimmingCharacters(in: .whitespaces).isEmpty { end -= 1 }
            lines.replaceSubrange(start..<end, with: section(list))
        } else if !list.isEmpty {
            if let last = lines.last, !last.isEmpty { lines.append("") }
            lines.append("# Team result caches (`repro remote add|remove`); credentials come from the AWS settings.")
            lines += section(list)
        }
        let text = lines.joined(separator: "\n") + "\n"
        // Parse what would be written before writing it.
        let node = try SpecNode.parse(text, file: p)
        _ = try StoreConfig.interpret(node)
        do {
            try FileIO.writeAtomically(Array(text.utf8), to: p, sync: true)
        } catch {
            throw ConfigError("cannot write \(p): \(error.message)")
        }
    }
}
