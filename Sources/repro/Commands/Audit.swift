import ArgumentParser
import Foundation
import ReproKit
import ReproSupport

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit",
        abstract: "Say where a file, hash, run or key came from: code, config, seed, precision, machine, lineage.")

    @Argument(help: "A file (found by content), a SHA-256, a run id (or prefix) or a cache key.")
    var target: String

    @Flag(help: "Include the stored patch of a dirty run.") var patch = false
    @Flag(help: "Verify the run's signed attestation (needs --pubkey).") var verifyAttestation = false
    @Option(help: "Public key for --verify-attestation.") var pubkey: String?
    @Option(help: "Verify this envelope file instead of the one kept in the store.") var attestation: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if verifyAttestation && pubkey == nil { throw ValidationError("--verify-attestation needs --pubkey FILE.pub") }
    }

    func run() throws {
        try reporting {
            let (repo, store) = try openRepoAndStore()
            let auditor = try Auditor(store: store, repo: repo)
            let resolution: Auditor.Resolution
            do {
                resolution = try auditor.resolve(target)
            } catch let e as NotFoundError where verifyAttestation {
                throw Attestation.Failure(message: "verification failed: \(e.message)")
            }
            var check: Attestation.Check?
            if verifyAttestation, let pubkey {
                let c = Attestation.check(runs: resolution.runs, publicKeyPath: pubkey, envelope: attestation, store: store)
                guard !c.verified.isEmpty else {
                    // One run per line; the same reason for many runs is said once, with their count.
                    var byReason: [(String, [String])] = []
                    for f in c.failures {
                        let reason = f.reason.replacingOccurrences(of: f.runId, with: "\u{0}run\u{0}")
                        if let i = byReason.firstIndex(where: { $0.0 == reason }) { byReason[i].1.append(f.runId) } else { byReason.append((reason, [f.runId])) }
                    }
                    let lines = byReason.prefix(10).map { reason, ids in
                        ids.count == 1
                            ? "  run \(ids[0]): \(reason.replacingOccurrences(of: "\u{0}run\u{0}", with: ids[0]))"
                            : "  \(ids.count) runs (\(ids.prefix(3).joined(separator: ", "))\(ids.count > 3 ? ", ..." : "")): \(reason.replacingOccurrences(of: "\u{0}run\u{0}", with: "each"))"
                    }
                    throw Attestation.Failure(
                        message: "verification failed: none of the \(c.failures.count) run(s) behind \(target) has a valid attestation:\n"
                            + lines.joined(separator: "\n"))
                }
                check = c
                Console.err("attestation verified for run \(c.verified.joined(separator: ", "))")
            }
            var entries: [JSONValue] = []
            for r in resolution.runs {
                var e = try auditor.entry(r, includePatch: patch).objectValue ?? [:]
                if let name = resolution.matchedOutputs[r.runId] { e["matched_output"] = .string(name) }
                if r.runId == resolution.servedBy { e["served_this_file"] = .bool(true) }
                if let check {
                    e["attestation_verified"] = .bool(check.verified.contains(r.runId))
                    if let f = check.failures.first(where: { $0.runId == r.runId }) { e["attestation_problem"] = .string(f.reason) }
                }
                entries.append(.object(e))
            }
            if output.json {
                Console.json([
                    "target": .string(target), "resolved_as": .string(resolution.kind), "sha256": resolution.sha256.json,
                    "runs": .array(entries),
                ])
                return
            }
            Console.out(AuditText.render(target: target, resolution: resolution, entries: entries))
        }
    }
}

/// The human form of an audit.
enum AuditText {
    static func render(target: String, resolution: Auditor.Resolution, entries: [JSONValue]) -> String {
        var out: [String] = []
        let what = resolution.sha256.map { " (sha256 \($0.prefix(16))…)" } ?? ""
        out.append("\(target)\(what): \(entries.count) run\(entries.count == 1 ? "" : "s")")
        for e in entries {
            func s(_ k: String) -> String { e[k]?.stringValue ?? "-" }
            out.append("")
            let served = e["served_this_file"] == .bool(true) ? "  (repro wrote this file from it)" : ""
            out.append("run        \(s("run_id"))  \(s("name"))  \(s("status"))\(e["matched_output"]?.stringValue.map { "  (wrote it as \($0))" } ?? "")\(served)")
            out.append("when       \(s("started_at")) → \(s("finished_at"))  (\(e["duration_s"]?.numberValue.map { String(format: "%.2fs", $0) } ?? "-"))")
            out.append("where      \(s("backend")) on \(s("host")) (\(s("os"))) by \(s("user")), repro \(s("repro_version"))")
            if let by = e["submitter"], by != .null {
                out.append("submitted  by \(by["user"]?.stringValue ?? "-") on \(by["host"]?.stringValue ?? "-")")
            }
            let c = e["commit_info"] ?? .null
            var commit = "commit     \(s("commit"))"
            if c["present"] == .bool(false) {
                commit += "  (not in this repository any more)"
            } else {
                commit += "  \(c["summary"]?.stringValue ?? "")\n           \(c["author"]?.stringValue ?? "") <\(c["email"]?.stringValue ?? "")>, \(c["date"]?.stringValue ?? "")"
                if c["reachable"] == .bool(false) { commit += "\n           (no branch or tag reaches this commit any more)" }
            }
            out.append(commit)
            for p in e["code"]?["paths"]?.arrayValue ?? [] {
                out.append("code       \(p["path"]?.stringValue ?? "")  \(p["kind"]?.stringValue ?? "") \(p["id"]?.stringValue ?? "")")
            }
            let dirty = e["dirty"] == .bool(true)
            out.append("dirty      \(dirty ? "yes, patch blob \(s("patch_blob").prefix(12)): " + (e["dirty_files"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", ") : "no")")
            out.append("config     \(e["config_hash"]?.stringValue ?? "")")
            out.append("params     \(e["params"]?.canonical ?? "{}")")
            out.append("seed       \(e["seed"]?.canonical ?? "-")")
            out.append("solver     \(e["solver"]?.canonical ?? "{}")")
            for i in e["inputs"]?.arrayValue ?? [] {
                out.append("input      \(i["path"]?.stringValue ?? "")  \(i["sha256"]?.stringValue ?? "")")
            }
            out.append("env        \(e["env"]?.canonical ?? "{}")")
            out.append("executable \(e["executable"]?["path"]?.stringValue ?? "-")  \(e["executable"]?["sha256"]?.stringValue ?? "")")
            for o in e["outputs"]?.arrayValue ?? [] {
                out.append("output     \(o["name"]?.stringValue ?? "")  \(o["sha256"]?.stringValue ?? "")  \(o["size"]?.canonical ?? "") B")
            }
            let cache = e["cache_state"] ?? .null
            var state = "cache      \(cache["state"]?.stringValue ?? "-")"
            for r in cache["stale_reasons"]?.arrayValue ?? [] {
                state += "\n           \(r["path"]?.stringValue ?? "") changed \(r["from"]?.stringValue?.prefix(12) ?? "") → \(r["to"]?.stringValue?.prefix(12) ?? "")"
            }
            if let why = cache["invalidated_reason"]?.stringValue { state += " (invalidated: \(why))" }
            if let when = cache["outputs_evicted_at"]?.stringValue { state += " (outputs evicted by gc at \(when))" }
            out.append(state)
            for p in e["parents"]?.arrayValue ?? [] {
                out.append("parent     \(p["input"]?.stringValue ?? "") came from run \(p["from"]?.stringValue ?? "") (sha256 \(p["sha256"]?.stringValue?.prefix(12) ?? ""))")
            }
            let origin = e["origin"] ?? .null
            if origin != .null {
                out.append("origin     pulled from \(origin["remote"]?.stringValue ?? "?") (\(origin["url"]?.stringValue ?? "")) at \(origin["pulled_at"]?.stringValue ?? "?"), \(origin["trusted_as"]?.stringValue ?? "")")
                out.append("           manifest \(origin["manifest"]?.stringValue ?? "?")")
            }
            if let f = e["reproducibility_finding"], f != .null {
                let results = f["results"]?.arrayValue ?? []
                out.append("FINDING    this key has \(results.count) different results (producers disagree); settle it with `repro verify`:")
                for r in results {
                    out.append("           outputs \(r["outputs_digest"]?.stringValue?.prefix(12) ?? ""): \((r["producers"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: "; "))")
                }
            }
            let verifications = e["verifications"]?.arrayValue ?? []
            out.append("verified   \(verifications.isEmpty ? "never (repro verify)" : verifications.map { "\($0["verdict"]?.stringValue ?? "") on \($0["backends"]?.arrayValue?.compactMap(\.stringValue).joined(separator: ",") ?? "") at \($0["created_at"]?.stringValue ?? "")" }.joined(separator: "; "))")
            if let n = e["attestations"]?.intValue, n > 0 {
                out.append("attested   \(n) signed statement\(n == 1 ? "" : "s")\(e["attestation_verified"] == .bool(true) ? ", signature and outputs verified" : "")")
            }
            if let patch = e["patch"]?.stringValue { out.append("--- patch ---\n" + patch) }
        }
        return out.joined(separator: "\n")
    }
}
