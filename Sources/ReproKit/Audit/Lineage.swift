import Foundation
import ReproSupport
import ReproStore

/// Upstream lineage: an input whose content hash equals another run's output makes that run
/// its parent.
public struct Lineage {
    let store: Store
    /// The repository root the runs' input paths are relative to (to look up which run repro
    /// wrote each input file from); nil: not known.
    let repoRoot: String?

    public init(store: Store, repoRoot: String? = nil) {
        self.store = store
        self.repoRoot = repoRoot
    }

    public struct Edge: Sendable, Hashable {
        public var from: String
        public var to: String
        public var sha256: String
        /// The input path in the child.
        public var input: String
        public var json: JSONValue {
            ["from": .string(from), "to": .string(to), "sha256": .string(sha256), "input": .string(input)]
        }
    }

    /// For each input, the run that produced its content: the run repro wrote that input file
    /// from (when the file was materialized by repro with these bytes), else a succeeded run
    /// that finished before this one started, the newest such.
    public func parents(of run: RunRecord) throws -> [Edge] {
        var edges: [Edge] = []
        for input in run.inputs {
            let producers = try store.runsProducing(sha256: input.sha256)
                .map(\.0)
                .filter { $0.runId != run.runId && $0.status == .succeeded }
            if let root = repoRoot, let m = try store.materialization(atPath: root + "/" + input.path), m.sha256 == input.sha256,
                producers.contains(where: { $0.runId == m.runId })
            {
                edges.append(Edge(from: m.runId, to: run.runId, sha256: input.sha256, input: input.path))
                continue
            }
            let before = producers.filter { ($0.finishedAt ?? "") <= run.startedAt }
            if let p = before.first ?? producers.first {
                edges.append(Edge(from: p.runId, to: run.runId, sha256: input.sha256, input: input.path))
            }
        }
        return edges
    }

    /// The whole upstream graph of the given runs.
    public func graph(from roots: [RunRecord]) throws -> (nodes: [RunRecord], edges: [Edge]) {
        var nodes: [String: RunRecord] = [:]
        var edges = Set<Edge>()
        var queue = roots
        while let r = queue.popLast() {
            guard nodes[r.runId] == nil else { continue }
            nodes[r.runId] = r
            for e in try parents(of: r) {
                edges.insert(e)
                if nodes[e.from] == nil, let parent = try? store.run(id: e.from) { queue.append(parent) }
            }
        }
        // The order `repro audit` lists runs in: clean runs before uncommitted-patch ones,
        // newest first.
        let ordered = nodes.values.sorted { ($0.dirty ? 1 : 0, $1.startedAt) < ($1.dirty ? 1 : 0, $0.startedAt) }
        return (ordered, edges.sorted { ($0.from, $0.to, $0.input) < ($1.from, $1.to, $1.input) })
    }

    public static func json(nodes: [RunRecord], edges: [Edge]) -> JSONValue {
        [
            "nodes": .array(nodes.map { r in
                [
                    "run_id": .string(r.runId), "name": .string(r.name), "key": .string(r.key), "commit": .string(r.commit),
                    "status": .string(r.status.rawValue), "seed": .int(r.seed),
                    "outputs": .array(r.outputs.map(\.json)),
                ]
            }),
            "edges": .array(edges.map(\.json)),
        ]
    }

    /// Graphviz: one box per run, an edge per consumed output.
    public static func dot(nodes: [RunRecord], edges: [Edge]) -> String {
        func q(_ s: String) -> String { "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var lines = ["digraph lineage {", "  rankdir=LR;", "  node [shape=box, fontname=\"monospace\"];"]
        for n in nodes {
            let label = "\(n.name)\\n\(n.runId)\\ncommit \(n.commit.prefix(10)) seed \(n.seed)\\n\(n.status.rawValue)"
            lines.append("  \(q(n.runId)) [label=\"\(label)\"];")
        }
        for e in edges {
            let input = e.input.replacingOccurrences(of: "\"", with: "\\\"")
            lines.append("  \(q(e.from)) -> \(q(e.to)) [label=\"\(input)\\n\(e.sha256.prefix(12))\"];")
        }
        lines.append("}")
        return lines.joined(separator: "\n")
    }
}
