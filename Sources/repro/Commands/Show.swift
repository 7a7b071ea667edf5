import ArgumentParser
import Foundation
import ReproKit
import ReproSupport
import ReproStore

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the whole record of one run, or of one verification.")

    @Argument(help: "A run id or verification id, or a unique prefix of one (default: the newest run).")
    var runId: String?

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            switch try ShownRecord.find(runId, in: try openStore()) {
            case .verification(let v):
                if output.json { Console.json(v) } else { Console.out(Show.describe(verification: v)) }
            case .run(let r, let verifications):
                if output.json {
                    var j = r.json.objectValue ?? [:]
                    j["verifications"] = .array(verifications)
                    Console.json(.object(j))
                } else {
                    Console.out(Show.describe(run: r, verifications: verifications))
                }
            }
        }
    }

    /// The record of one run, as `repro show` prints it.
    static func describe(run r: RunRecord, verifications: [JSONValue]) -> String {
        var lines = [
            "run        \(r.runId)",
            "name       \(r.name)  (spec \(r.specPath))",
            "status     \(r.status.rawValue)\(r.exitCode.map { ", exit \($0)" } ?? "")\(r.message.map { ": \($0)" } ?? "")",
            "key        \(r.key)",
            "config     \(r.configHash)",
            "commit     \(r.commit)  \(r.commitSummary)",
            "dirty      \(r.dirty ? "yes: " + r.dirtyFiles.joined(separator: ", ") + " (patch blob \(r.patchBlob?.prefix(12) ?? "-"))" : "no")",
        ]
        for entry in r.code.paths { lines.append("code       \(entry.path) \(entry.kind) \(entry.id)") }
        for sub in r.code.submodules { lines.append("submodule  \(sub.path) \(sub.commit)") }
        lines.append("seed       \(r.seed)")
        lines.append("solver     \(r.solver.canonical)")
        lines.append("params     \(r.config["params"]?.canonical ?? "{}")")
        for i in r.inputs { lines.append("input      \(i.path)  \(i.sha256)  \(i.size) B") }
        lines.append("command    \(r.command.joined(separator: " "))")
        lines.append("executable \(r.executablePath ?? "-")  \(r.executableSha256 ?? "")")
        if let i = r.interpreter {
            lines.append("interpreter \(i.language) \(i.version) at \(i.path)"
                + (r.packagesBlob.map { " (packages: blob \($0.prefix(12)), `repro diff` compares them)" } ?? ""))
            if !i.prefix.isEmpty {
                let base = i.basePrefix.isEmpty ? i.prefix : i.basePrefix
                lines.append("environment \(i.environmentKind) \(i.prefix)" + (base != i.prefix ? " (made from \(base))" : ""))
            }
        }
        if let s = r.submitter { lines.append("submitted  by \(s.user) on \(s.host); ran as \(r.user) on \(r.host)") }
        lines.append("env        \(r.envJSON.canonical)")
        lines.append(
            "backend    \(r.backend)\(r.backendType.map { $0 == r.backend ? "" : " (type \($0))" } ?? "") on \(r.host) (\(r.os)), repro \(r.reproVersion)"
                + (r.jobId.map { ", job \($0)" } ?? "") + (r.resubmissions > 0 ? ", \(r.resubmissions + 1) attempts" : ""))
        if let o = r.origin {
            lines.append("origin     pulled from \(o.remote) at \(o.pulledAt), \(o.trustedAs); produced by \(r.user)@\(r.host)")
        }
        if let rt = r.routing { lines.append("routing    \(rt.reason) (\(rt.by.rawValue))") }
        if let e = r.estimate {
            lines.append("estimate   \(DurationText.format(e.seconds.rounded())) (\(e.tier.rawValue): \(e.detail))"
                + (r.costEstimate.map { String(format: ", cost estimate %.4f", $0) } ?? ""))
        }
        for a in r.attempts {
            let cost = a.cost.map { String(format: ", cost %.4f", $0) } ?? ""
            lines.append("attempt    \(a.backend): \(a.outcome) after \(Format.seconds(a.durationS))\(cost)" + (a.reason.map { " (\($0))" } ?? ""))
        }
        if let f = r.fallback { lines.append("fallback   from \(f.from) to \(f.to): \(f.reason)") }
        lines.append("cost       \(r.cost.map { String(format: "%.4f", $0) } ?? "- (no price for \(r.backend) in prices:)")")
        lines.append("started    \(r.startedAt)")
        lines.append("finished   \(r.finishedAt ?? "-")  (\(Format.seconds(r.durationS)))")
        lines.append("served     \(r.hitCount) cache hit\(r.hitCount == 1 ? "" : "s")")
        if let when = r.outputsEvictedAt {
            lines.append("evicted    outputs evicted by `repro cache gc` at \(when); hashes below are the record")
        }
        if let why = r.invalidatedReason { lines.append("invalid    \(why)") }
        for s in r.staleReasons { lines.append("stale      \(s.text)") }
        for o in r.outputs { lines.append("output     \(o.name)  \(o.sha256)  \(o.size) B") }
        lines.append("stdout     \(r.stdoutBlob ?? "-")")
        lines.append("stderr     \(r.stderrBlob ?? "-")")
        for v in verifications {
            let backends = v["backends"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ",") ?? ""
            lines.append("verified   \(v["verdict"]?.stringValue ?? "") on \(backends) at \(v["created_at"]?.stringValue ?? "")")
        }
        return lines.joined(separator: "\n")
    }

    static func describe(verification v: JSONValue) -> String {
        var lines = [
            "verification \(v["verification_id"]?.stringValue ?? "")",
            "verdict      \(v["verdict"]?.stringValue ?? "")",
            "key          \(v["key"]?.stringValue ?? "")",
            "backends     \(v["backends"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ", ") ?? "")",
            "when         \(v["created_at"]?.stringValue ?? "")",
        ]
        for r in v["runs"]?.arrayValue ?? [] {
            let variation = r["variation"]?.stringValue.map { " under \($0)" } ?? ""
            lines.append("run          \(r["run_id"]?.stringValue ?? "") on \(r["backend"]?.stringValue ?? "") (\(r["status"]?.stringValue ?? ""))\(variation)")
        }
        for o in v["details"]?["outputs"]?.arrayValue ?? [] {
            lines.append("output       \(o["name"]?.stringValue ?? ""): \(o["verdict"]?.stringValue ?? "")")
        }
        for c in v["details"]?["causes"]?.arrayValue ?? [] { lines.append("cause        \(c.stringValue ?? "")") }
        return lines.joined(separator: "\n")
    }
}
