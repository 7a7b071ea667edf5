import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the whole record of one run, or of one verification.")

    @Argument(help: "A run id or verification id, or a unique prefix of one (default: the newest run).")
    var runId: String?

    @OptionGroup var output: OutputOptions

    func run() throws {
        try reporting {
            let store = try openStore()
            // A verification id (what `repro verify` prints) shows that verification.
            if let id = runId, (try? store.run(matching: id)) == nil, let v = try store.verification(matching: id) {
                if output.json {
                    Console.json(v)
                } else {
                    Console.out(Show.describe(verification: v))
                }
                return
            }
            guard let r = try runId.map({ try store.run(matching: $0) }) ?? store.recentRuns(limit: 1).first else {
                throw NotFoundError("the store at \(store.root) holds no runs yet; `repro run SPEC` records one")
            }
            let verifications = try store.verifications(forKey: r.key)
            if output.json {
                var j = r.json.objectValue ?? [:]
                j["verifications"] = .array(verifications)
                Console.json(.object(j))
                return
            }
            var lines = [
                "run        \(r.runId)",
                "name       \(r.name)  (spec \(r.specPath))",
                "status     \(r.status.rawValue)\(r.exitCode.map { ", exit \($0)" } ?? "")\(r.message.map { ": \($0)" } ?? "")",
                "key        \(r.key)",
                "config     \(r.configHash)",
                "commit     \(r.commit)  \(r.commitSummary)",
                "dirty      \(r.dirty ? "yes: " + r.dirtyFiles.joined(separator: ", ") + " (patch blob \(r.patchBlob?.prefix(12) ?? "-"))" : "no")",
            ]
            for entry in r.code["paths"]?.arrayValue ?? [] {
                lines.append("code       \(entry["path"]?.stringValue ?? "") \(entry["kind"]?.stringValue ?? "") \(entry["id"]?.stringValue ?? "")")
            }
            for sub in r.code["submodules"]?.arrayValue ?? [] {
                lines.append("submodule  \(sub["path"]?.stringValue ?? "") \(sub["commit"]?.stringValue ?? "")")
            }
            lines.append("seed       \(r.seed)")
            lines.append("solver     \(r.solver.canonical)")
            lines.append("params     \(r.config["params"]?.canonical ?? "{}")")
            for i in r.inputs { lines.append("input      \(i.path)  \(i.sha256)  \(i.size) B") }
            lines.append("command    \(r.command.joined(separator: " "))")
            lines.append("executable \(r.executablePath ?? "-")  \(r.executableSha256 ?? "")")
            if let path = r.interpreter["path"]?.stringValue {
                let version = r.interpreter["version"]?.stringValue ?? ""
                lines.append("interpreter \(r.interpreter["language"]?.stringValue ?? "") \(version) at \(path)"
                    + (r.packagesBlob.map { " (packages: blob \($0.prefix(12)), `repro diff` compares them)" } ?? ""))
                if let kind = r.interpreter["environment"]?.stringValue, let prefix = r.interpreter["prefix"]?.stringValue {
                    let base = r.interpreter["base_prefix"]?.stringValue ?? prefix
                    lines.append("environment \(kind) \(prefix)" + (base != prefix ? " (made from \(base))" : ""))
                }
            }
            if let by = r.submitter["user"]?.stringValue {
                lines.append("submitted  by \(by) on \(r.submitter["host"]?.stringValue ?? "-"); ran as \(r.user) on \(r.host)")
            }
            lines.append("env        \(r.env.canonical)")
            lines.append(
                "backend    \(r.backend)\(r.backendType.map { $0 == r.backend ? "" : " (type \($0))" } ?? "") on \(r.host) (\(r.os)), repro \(r.reproVersion)"
                    + (r.jobId.map { ", job \($0)" } ?? "") + (r.attempts > 0 ? ", \(r.attempts + 1) attempts" : ""))
            if r.origin != .null {
                lines.append(
                    "origin     pulled from \(r.origin["remote"]?.stringValue ?? "?") at \(r.origin["pulled_at"]?.stringValue ?? "?"), "
                        + "\(r.origin["trusted_as"]?.stringValue ?? ""); produced by \(r.user)@\(r.host)")
            }
            if let why = r.routing["reason"]?.stringValue { lines.append("routing    \(why) (\(r.routing["by"]?.stringValue ?? ""))") }
            if let e = r.estimate["seconds"]?.numberValue {
                lines.append("estimate   \(DurationText.format(e.rounded())) (\(r.estimate["tier"]?.stringValue ?? ""): \(r.estimate["detail"]?.stringValue ?? ""))"
                    + (r.costEstimate.map { String(format: ", cost estimate %.4f", $0) } ?? ""))
            }
            for a in r.attemptLog {
                let cost = a["cost"]?.numberValue.map { String(format: ", cost %.4f", $0) } ?? ""
                lines.append("attempt    \(a["backend"]?.stringValue ?? "?"): \(a["outcome"]?.stringValue ?? "?") after \(Format.seconds(a["duration_s"]?.numberValue))\(cost)"
                    + (a["reason"]?.stringValue.map { " (\($0))" } ?? ""))
            }
            if r.fallback != .null {
                lines.append("fallback   from \(r.fallback["from"]?.stringValue ?? "?") to local: \(r.fallback["reason"]?.stringValue ?? "")")
            }
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
            Console.out(lines.joined(separator: "\n"))
        }
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
