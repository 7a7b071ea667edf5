import Foundation

/// Normalizes repo-relative paths.
public enum RepoPath {
    /// `./a//b/` → `a/b`; `.` stays `.`; nil for absolute paths or paths that climb out with `..`.
    public static func normalize(_ raw: String) -> String? {
        guard !raw.hasPrefix("/") else { return nil }
        let parts = raw.split(separator: "/").filter { $0 != "." }
        guard !parts.contains("..") else { return nil }
        return parts.isEmpty ? "." : parts.joined(separator: "/")
    }

    /// A file path (absolute, or relative to the current directory) as a path relative to the
    /// repository root when it lies inside it, so records do not depend on where repro ran.
    public static func relative(_ path: String, repo: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var parts: [Substring] = []
        for piece in absolute.split(separator: "/") {
            if piece == "." { continue }
            if piece == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(piece)
        }
        // Appended piece by piece: `joined` over substrings costs a generic instantiation
        // (~280,000 instructions) on every miss.
        var clean = ""
        for part in parts {
            clean += "/"
            clean += part
        }
        if clean.isEmpty { clean = "/" }
        if clean.hasPrefix(repo + "/") { return String(clean.dropFirst(repo.count + 1)) }
        // Symlinks resolved only when the plain path is not inside.
        let root = (repo as NSString).resolvingSymlinksInPath
        if clean.hasPrefix(root + "/") { return String(clean.dropFirst(root.count + 1)) }
        let resolved = (clean as NSString).resolvingSymlinksInPath
        for base in [repo, root] where resolved.hasPrefix(base + "/") { return String(resolved.dropFirst(base.count + 1)) }
        return clean
    }
}
