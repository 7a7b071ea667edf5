import Foundation
import ReproExecution
import ReproSupport
import ReproGit
import ReproStore

/// Computes the identity and key of specs in one repository. Code identities and input hashes
/// are remembered across calls, so preparing a 10,000-point sweep reads git and the inputs once.
final class Preparer {
    let repo: GitRepository
    let store: Store
    let config: StoreConfig
    let allowDirty: Bool
    let specPath: String
    /// By code paths; a short list searched in order (a sweep has one or a few sets of code
    /// paths, and a dictionary keyed by arrays costs a run type-metadata lookups at start).
    private var identities: [(paths: [String], identity: CodeIdentity, patch: [UInt8]?)] = []
    private var inputHashes: [String: [InputFile]] = [:]
    typealias Reads = (CodeIdentity, [UInt8]?, [InputFile])
    /// The shared and key context of the last reads: a sweep's points, prepared in blocks or one
    /// by one as they are dispatched, hash the patch and write the code identity once.
    private var lastContext: (reads: Reads, shared: Runner.Prepared.Shared, key: KeyContext)?

    init(repo: GitRepository, store: Store, config: StoreConfig, allowDirty: Bool, specPath: String) {
        self.repo = repo
        self.store = store
        self.config = config
        self.allowDirty = allowDirty
        self.specPath = specPath
    }

    func prepare(_ spec: SimulationSpec) throws -> Runner.Prepared {
        // Templates are checked before anything else can fail halfway.
        try Preparer.checkTemplates(spec)
        let c = context(try reads(spec))
        let k = Preparer.keyOf(spec, c.key)
        return Runner.Prepared(spec: spec, shared: c.shared, seed: k.seed, key: k.key, configHash: k.configHash)
    }

    private func context(_ r: Reads) -> (shared: Runner.Prepared.Shared, key: KeyContext) {
        if let c = lastContext, Preparer.sameReads(c.reads, r) { return (c.shared, c.key) }
        let c = (
            reads: r, shared: Runner.Prepared.Shared(repo: repo, store: store, identity: r.0, patch: r.1, inputs: r.2, config: config),
            key: KeyContext(identity: r.0, patch: r.1, inputs: r.2))
        lastContext = c
        return (c.shared, c.key)
    }

    static func checkTemplates(_ spec: SimulationSpec) throws {
        _ = try CommandTemplate.render(
            spec.command, .init(params: spec.params, solver: spec.solver, seed: spec.resolvedSeed, outdir: "", config: ""))
    }

    /// What a spec's key needs from git and the file system (remembered across specs).
    private func reads(_ spec: SimulationSpec) throws -> Reads {
        let (identity, patch) = try codeIdentity(spec.code)
        var inputs: [InputFile] = []
        for path in spec.inputs { inputs += try hashInput(path) }
        return (identity, patch, inputs)
    }

    /// What a key needs from a spec's reads, hashed and written once per distinct reads (a
    /// sweep's points share one): the patch's hash and the code identity's canonical JSON.
    /// A class: points refer to it, where copying the code identity into each cost retains.
    final class KeyContext: Sendable {
        let identity: CodeIdentity
        let patchHash: String?
        let inputs: [InputFile]
        let code: [UInt8]

        init(identity: CodeIdentity, patch: [UInt8]?, inputs: [InputFile]) {
            self.identity = identity
            patchHash = patch.map { Hashing.sha256Hex($0) }
            self.inputs = inputs
            code = identity.keyJSON.canonicalBytes
        }
    }

    /// The pure part of preparing: config hash, seed, key. No I/O, so a sweep's points can go
    /// through it on every core.
    static func keyOf(_ spec: SimulationSpec, _ c: KeyContext) -> (key: String, configHash: String, seed: Int64) {
        let k = digestOf(spec, c)
        return (k.key.hex, k.configHash, k.seed)
    }

    /// `keyOf` with the key as 32 bytes.
    static func digestOf(_ spec: SimulationSpec, _ c: KeyContext) -> (key: KeyDigest, configHash: String, seed: Int64) {
        let configHash = spec.configHash
        let seed: Int64
        switch spec.seed {
        case .fixed(let s): seed = s
        case .auto: seed = Hashing.seed(fromHex: configHash)
        }
        let key = CacheKey.digest(
            .init(
                configHash: configHash, code: c.identity, patchHash: c.patchHash, seed: seed, solver: spec.solver, inputs: c.inputs,
                env: spec.env, command: spec.command),
            code: c.code)
        return (key, configHash, seed)
    }

    /// Every point's key and config hash: git and inputs read (once per distinct set) in order
    /// on this thread, then templates checked and keys computed on all cores; the first failing
    /// point in sweep order is the error, as when preparing them one by one.
    func keyAll(_ specs: [SimulationSpec]) throws -> [(key: KeyDigest, configHash: String)] {
        try Preparer.keys(specs, keyContexts(specs))
    }

    /// The key contexts of `specs`, one per run of points with the same code paths and inputs
    /// (usually one for the whole sweep: the points of a sweep share the base spec's arrays, so
    /// the comparison is of two buffer addresses); points refer to theirs by index. Reads git
    /// and inputs (remembered), so on the preparer's thread; the first spec's templates are
    /// checked first, before anything else can fail.
    func keyContexts(_ specs: [SimulationSpec]) throws -> KeyContexts {
        if let first = specs.first { try Preparer.checkTemplates(first) }
        var contexts: [KeyContext] = []
        var contextOf = [Int](repeating: 0, count: specs.count)
        for i in specs.indices {
            if i > 0, specs[i].code == specs[i - 1].code, specs[i].inputs == specs[i - 1].inputs {
                contextOf[i] = contexts.count - 1
                continue
            }
            let c = context(try reads(specs[i])).key
            if contexts.last !== c { contexts.append(c) }
            contextOf[i] = contexts.count - 1
        }
        return KeyContexts(contexts: contexts, of: contextOf)
    }

    struct KeyContexts: Sendable {
        let contexts: [KeyContext]
        let of: [Int]
    }

    /// Templates checked and keys computed, on all cores: pure, so any thread may call it (a
    /// sweep keys one part of its points while it looks up the part before).
    static func keys(_ specs: [SimulationSpec], _ c: KeyContexts) throws -> [(key: KeyDigest, configHash: String)] {
        try ParallelMap.map(specs.count) { i in
            try Preparer.checkTemplates(specs[i])
            let k = Preparer.digestOf(specs[i], c.contexts[c.of[i]])
            return (k.key, k.configHash)
        }
    }

    /// Whether two points read the same code, patch and inputs (compared by value).
    static func sameReads(_ a: Reads, _ b: Reads) -> Bool {
        a.0 == b.0 && a.1 == b.1 && a.2 == b.2
    }

    func codeIdentity(_ paths: [String]) throws -> (CodeIdentity, [UInt8]?) {
        if let known = identities.last(where: { $0.paths == paths }) { return (known.identity, known.patch) }
        let (identity, _) = try CodeIdentity.read(repo: repo, paths: paths, hashOutside: hashOutside)
        var patch: [UInt8]? = nil
        if !identity.dirtyFiles.isEmpty {
            guard allowDirty else {
                let shown = identity.dirtyFiles.prefix(20).map { "  " + $0 }.joined(separator: "\n")
                let more = identity.dirtyFiles.count > 20 ? "\n  ... and \(identity.dirtyFiles.count - 20) more" : ""
                throw EnvironmentError(
                    "uncommitted changes under the code paths (\(paths.joined(separator: ", "))):\n\(shown)\(more)\n"
                        + "commit them so the run is tied to a commit, or pass --allow-dirty to record them as a patch")
            }
            guard let head = try? repo.headCommit() else { throw EnvironmentError("HEAD vanished while reading it") }
            var bytes = try repo.patch(under: paths, against: head)
            // What git's own patch leaves out: content of ignored files, and edits inside
            // submodules (the patch only says "-dirty").
            if !identity.ignoredFiles.isEmpty { bytes += try repo.patchAddingFiles(identity.ignoredFiles) }
            for sub in identity.dirtySubmodules { bytes += try repo.submodulePatch(sub) }
            patch = bytes
        }
        identities.append((paths, identity, patch))
        return (identity, patch)
    }

    /// An input is a file or a directory (every file below, sorted), relative to the repo root.
    /// Symlinks are followed and hashed by what they lead to; anything that is not a regular
    /// file (a FIFO would block the hash forever) is refused.
    func hashInput(_ rel: String) throws -> [InputFile] {
        if let known = inputHashes[rel] { return known }
        let root = repo.workdir
        let full = root + "/" + rel
        var st = stat()
        guard stat(full, &st) == 0 else {
            var lst = stat()
            let why = lstat(full, &lst) == 0 ? "is a symlink to something that does not exist" : "does not exist under \(root)"
            throw ConfigError("input '\(rel)' \(why); create it or fix `inputs:` in \(specPath)")
        }
        var files: [String]
        switch st.st_mode & S_IFMT {
        case S_IFREG: files = [rel]
        case S_IFDIR:
            let found = FileWalk.walk(full)
            if let s = found.special.first {
                throw ConfigError(
                    "input '\(rel)/\(s.path)' is \(s.kind), not a regular file; repro hashes inputs by content and cannot "
                        + "read it. Remove it from the folder or list the input files one by one in `inputs:` (\(specPath))")
            }
            if let d = found.dangling.first {
                throw ConfigError("input '\(rel)/\(d)' is a symlink to something that does not exist; fix or remove it")
            }
            files = found.files.map { rel + "/" + $0 }
        default:
            throw ConfigError(
                "input '\(rel)' is \(FileWalk.kindName(st.st_mode)), not a regular file or folder; repro hashes inputs by "
                    + "content and cannot read it. Give a regular file in `inputs:` (\(specPath))")
        }
        var out: [InputFile] = []
        for f in files {
            let (hash, size) = try store.hashFile(atPath: root + "/" + f)
            out.append(InputFile(path: f, sha256: hash, size: size))
        }
        inputHashes[rel] = out
        return out
    }

    /// The content hash of code a symlink leads to outside the repository: a file's SHA-256,
    /// or for a folder the SHA-256 of its sorted (path, SHA-256) list.
    func hashOutside(_ path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "dangling" }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return try store.hashFile(atPath: path).sha256
        case S_IFDIR:
            let found = FileWalk.walk(path)
            if let s = found.special.first {
                throw ConfigError("code outside the repository at \(path)/\(s.path) is \(s.kind); repro cannot hash it")
            }
            var listing = ""
            for f in found.files { listing += f + "\u{0}" + (try store.hashFile(atPath: path + "/" + f).sha256) + "\n" }
            return Hashing.sha256Hex(listing)
        default:
            throw ConfigError("code outside the repository at \(path) is \(FileWalk.kindName(st.st_mode)); repro cannot hash it")
        }
    }
}
