import Foundation

/// Computes the identity and key of specs in one repository. Code identities and input hashes
/// are remembered across calls, so preparing a 10,000-point sweep reads git and the inputs once.
final class Preparer {
    let repo: GitRepository
    let store: Store
    let config: StoreConfig
    let allowDirty: Bool
    let specPath: String
    private var identities: [[String]: (CodeIdentity, [UInt8]?)] = [:]
    private var inputHashes: [String: [InputFile]] = [:]

    init(repo: GitRepository, store: Store, config: StoreConfig, allowDirty: Bool, specPath: String) {
        self.repo = repo
        self.store = store
        self.config = config
        self.allowDirty = allowDirty
        self.specPath = specPath
    }

    func prepare(_ spec: SimulationSpec) throws -> Runner.Prepared {
        // Templates are checked before anything else can fail halfway.
        _ = try CommandTemplate.render(
            spec.command,
            .init(params: spec.params, solver: spec.solver, seed: spec.resolvedSeed, outdir: "", config: ""))
        let (identity, patch) = try codeIdentity(spec.code)
        var inputs: [InputFile] = []
        for path in spec.inputs { inputs += try hashInput(path) }
        let seed = spec.resolvedSeed
        let configHash = spec.configHash
        let key = CacheKey.compute(
            .init(
                configHash: configHash, code: identity, patchHash: patch.map { Hashing.sha256Hex($0) }, seed: seed,
                solver: spec.solver, inputs: inputs, env: spec.env, command: spec.command))
        return Runner.Prepared(
            spec: spec, repo: repo, store: store, identity: identity, patch: patch, inputs: inputs, seed: seed, key: key,
            configHash: configHash, config: config)
    }

    func codeIdentity(_ paths: [String]) throws -> (CodeIdentity, [UInt8]?) {
        if let known = identities[paths] { return known }
        let (identity, _) = try CodeIdentity.read(repo: repo, paths: paths)
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
            patch = try repo.patch(under: paths, against: head)
        }
        identities[paths] = (identity, patch)
        return (identity, patch)
    }

    /// An input is a file or a directory (every file below, sorted), relative to the repo root.
    func hashInput(_ rel: String) throws -> [InputFile] {
        if let known = inputHashes[rel] { return known }
        let root = repo.workdir
        let full = root + "/" + rel
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: full, isDirectory: &isDir) else {
            throw ConfigError("input '\(rel)' does not exist under \(root); create it or fix `inputs:` in \(specPath)")
        }
        let files = isDir.boolValue ? OutputCollector.regularFiles(under: full).map { rel + "/" + $0 } : [rel]
        var out: [InputFile] = []
        for f in files {
            let (hash, size) = try store.hashFile(atPath: root + "/" + f)
            out.append(InputFile(path: f, sha256: hash, size: size))
        }
        inputHashes[rel] = out
        return out
    }
}
