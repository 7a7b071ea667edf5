import Foundation
import ReproExecution
import ReproSupport
import ReproGit
import ReproStore

/// `repro backends`: every backend this repository can use, built in or configured, each
/// checked for what would stop a run now.
public enum BackendCheck {
    public struct Row: Sendable {
        public var name: String
        public var type: String
        /// Configured in .repro.yaml / .repro/config.yaml (a failure of one counts).
        public var configured: Bool
        public var problems: [BackendProblem]
        public var ok: Bool { problems.isEmpty }
        public var json: JSONValue {
            ["name": .string(name), "type": .string(type), "configured": .bool(configured), "ok": .bool(ok),
             "problems": .array(problems.map { .string($0.message) }),
             "problem_kinds": .array(problems.map { .string($0.kind.rawValue) })]
        }
    }

    public static func run(repo: GitRepository, store: Store, environment: [String: String]) throws -> [Row] {
        let config = try StoreConfig.load(storeRoot: store.root, repoRoot: repo.workdir)
        var names = Backends.builtIn.filter { config.backends[$0] == nil }
        names += config.backends.keys.sorted()
        var rows: [Row] = []
        for name in names {
            let type = Backends.type(of: name, config: config)
            var row = Row(name: name, type: type, configured: config.backends[name] != nil, problems: [])
            do {
                let b = try Backends.make(name, store: store, repoRoot: repo.workdir, jobs: 1, environment: environment, config: config)
                row.problems = b.check()
            } catch {
                row.problems = [BackendProblem((error as? ReproError)?.description ?? "\(error)", kind: FailureKind.of(error))]
            }
            rows.append(row)
        }
        return rows
    }

    /// Runs a probe job on one backend (`repro backends --probe NAME`).
    public static func probe(_ name: String, wait: Double, repo: GitRepository, store: Store, environment: [String: String]) throws -> NodeReport {
        try Backends.make(name, store: store, repoRoot: repo.workdir, jobs: 1, environment: environment).probe(wait: wait)
    }
}
