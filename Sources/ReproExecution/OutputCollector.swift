import Foundation
import ReproSupport

/// Finds what a simulation wrote under `$REPRO_OUTDIR` and matches it against the declared
/// output patterns (`*` and `?` within a path segment, `**` across segments).
public enum OutputCollector {
    public struct Collected: Sendable {
        /// Relative paths of the regular files to keep, sorted.
        public var files: [String]
        /// Declared outputs (literal names) that were not written.
        public var missing: [String]
    }

    public static func collect(outdir: String, patterns: [String]?) -> Collected {
        let all = regularFiles(under: outdir)
        guard let patterns else { return Collected(files: all, missing: []) }
        var kept = Set<String>()
        var missing: [String] = []
        for pattern in patterns {
            let found = all.filter { OutputCollector.matches(pattern, $0) }
            if found.isEmpty && !pattern.contains(where: { "*?[".contains($0) }) { missing.append(pattern) }
            kept.formUnion(found)
        }
        return Collected(files: kept.sorted(), missing: missing)
    }

    package static func matches(_ pattern: String, _ path: String) -> Bool {
        let trimmed = pattern.hasSuffix("/") ? pattern + "**" : pattern
        if trimmed.contains("**") {
            return fnmatch(trimmed.replacingOccurrences(of: "**", with: "*"), path, 0) == 0
        }
        // A directory name as a pattern means everything under it.
        if !trimmed.contains(where: { "*?[".contains($0) }) && path.hasPrefix(trimmed + "/") { return true }
        return fnmatch(trimmed, path, FNM_PATHNAME) == 0
    }

    /// Relative paths of the regular files under `root` (symlinks are not followed), sorted.
    public static func regularFiles(under root: String) -> [String] {
        var out: [String] = []
        func walk(_ rel: String) {
            guard let names = FileIO.directoryNames(rel.isEmpty ? root : root + "/" + rel) else { return }
            for name in names.sorted() {
                let childRel = rel.isEmpty ? name : rel + "/" + name
                var st = stat()
                guard lstat(root + "/" + childRel, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR: walk(childRel)
                case S_IFREG: out.append(childRel)
                default: continue
                }
            }
        }
        walk("")
        return out.sorted()
    }
}
