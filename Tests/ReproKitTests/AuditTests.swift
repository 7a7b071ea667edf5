import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// audit, lineage, diff, fsck, PROV export and attestations, on real runs.
final class AuditTests: XCTestCase {
    func runJSON(_ repo: TempRepo, _ args: [String], file: StaticString = #filePath, line: UInt = #line) -> JSONValue {
        let r = repro(args + ["--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err, file: file, line: line)
        return parseJSON(r.out, file: file, line: line)
    }

    func testAuditFindsACopiedRenamedFileAndRejectsAnEditedOne() throws {
        let repo = try TempRepo.seeded()
        let run = runJSON(repo, ["run", "sim.yaml"])
        let src = run["outputs"]?.arrayValue?.first?["path"]?.stringValue ?? ""
        let elsewhere = NSTemporaryDirectory() + "paper-supplement-\(UUID().uuidString.prefix(6)).json"
        try FileManager.default.copyItem(atPath: src, toPath: elsewhere)
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }

        let audit = runJSON(repo, ["audit", elsewhere])
        let r = audit["runs"]?.arrayValue?.first ?? .null
        XCTAssertEqual(r["run_id"], run["run_id"])
        XCTAssertEqual(r["commit"], run["commit"])
        XCTAssertEqual(r["seed"], .int(42))
        XCTAssertEqual(r["solver"]?["rtol"], .double(1e-6))
        XCTAssertEqual(r["matched_output"], "result.json")
        for field in ["key", "config", "backend", "status", "outputs", "cache_state"] { XCTAssertNotNil(r[field], field) }
        XCTAssertEqual(r["cache_state"]?["state"], "current")
        XCTAssertEqual(r["commit_info"]?["summary"], "initial")
        XCTAssertEqual(r["commit_info"]?["reachable"], .bool(true))
        XCTAssertTrue(repro(["audit", elsewhere], cwd: repo.path).out.contains("seed       42"))
        // By hash, by run id, by key prefix.
        XCTAssertEqual(runJSON(repo, ["audit", r["outputs"]?.arrayValue?.first?["sha256"]?.stringValue ?? ""])["runs"]?.arrayValue?.count, 1)
        XCTAssertEqual(runJSON(repo, ["audit", String(run["run_id"]?.stringValue?.prefix(20) ?? "")])["resolved_as"], "run")
        XCTAssertEqual(runJSON(repo, ["audit", String(run["key"]?.stringValue?.prefix(12) ?? "")])["resolved_as"], "key")

        // An edited copy with the output's own name: not produced by any run, and said why.
        let edited = NSTemporaryDirectory() + "audit-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: edited, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: edited) }
        let text = (try String(contentsOfFile: src, encoding: .utf8)).replacingOccurrences(of: "42", with: "43")
        FileManager.default.createFile(atPath: edited + "/result.json", contents: Data(text.utf8))
        let bad = repro(["audit", edited + "/result.json"], cwd: repo.path)
        XCTAssertEqual(bad.code, 5, "not found has its own exit code")
        XCTAssertTrue(bad.err.contains("no run in this store produced these bytes"), bad.err)
        // A copy elsewhere: no run is accused; runs that wrote a file of that name are listed apart.
        XCTAssertFalse(bad.err.contains("changed after"), bad.err)
        XCTAssertTrue(bad.err.contains("Separately, 1 run(s) wrote a file named result.json"), bad.err)
        // The file repro itself wrote, edited in place: that run is named as its source.
        let materialized = src
        FileManager.default.createFile(atPath: materialized, contents: Data(text.utf8))
        let edited2 = repro(["audit", materialized], cwd: repo.path)
        XCTAssertEqual(edited2.code, 5)
        XCTAssertTrue(edited2.err.contains("repro wrote this path from run \(run["run_id"]?.stringValue ?? "?")"), edited2.err)
        XCTAssertEqual(repro(["audit", "nonsense-target"], cwd: repo.path).code, 5)
    }

    func testTwoStepPipelineLineage() throws {
        let repo = try TempRepo.seeded()
        let a = runJSON(repo, ["run", "sim.yaml"])
        let aCSV = a["outputs"]?.arrayValue?.first { $0["name"] == "traj/0.csv" }?["path"]?.stringValue ?? ""
        let rel = String(aCSV.dropFirst(repo.path.count + 1))
        repo.write(
            "b.yaml",
            "name: step-b\ncommand: [sim/seeded.sh, '5']\ncode: [sim/]\ninputs: [\(rel)]\nseed: 7\n")
        repo.commitAll("step b")
        let b = runJSON(repo, ["run", "b.yaml"])
        let lineage = runJSON(repo, ["lineage", b["run_id"]?.stringValue ?? ""])
        let edges = lineage["edges"]?.arrayValue ?? []
        XCTAssertEqual(edges.count, 1)
        XCTAssertEqual(edges.first?["from"], a["run_id"])
        XCTAssertEqual(edges.first?["to"], b["run_id"])
        XCTAssertEqual(lineage["nodes"]?.arrayValue?.count, 2)
        let dot = repro(["lineage", b["run_id"]?.stringValue ?? "", "--dot"], cwd: repo.path).out
        XCTAssertTrue(dot.hasPrefix("digraph lineage {"), dot)
        XCTAssertTrue(dot.contains("\"\(a["run_id"]?.stringValue ?? "")\" -> \"\(b["run_id"]?.stringValue ?? "")\""), dot)
        let audit = runJSON(repo, ["audit", b["run_id"]?.stringValue ?? ""])
        XCTAssertEqual(audit["runs"]?.arrayValue?.first?["parents"]?.arrayValue?.first?["from"], a["run_id"])
    }

    func testDiffNamesParamToleranceAndJSONField() throws {
        let repo = try TempRepo.seeded()
        let a = runJSON(repo, ["run", "sim.yaml"])
        let b = runJSON(repo, ["run", "sim.yaml", "--set", "params.n=11", "--set", "solver.rtol=1e-8"])
        let diff = repro(["diff", a["run_id"]?.stringValue ?? "", b["run_id"]?.stringValue ?? "", "--json"], cwd: repo.path)
        XCTAssertEqual(diff.code, 1, "outputs differ: exit 1, like diff(1)")
        let d = parseJSON(diff.out)
        let fields = (d["identity"]?.arrayValue ?? []).compactMap { $0["field"]?.stringValue }
        XCTAssertTrue(fields.contains("params.n"), "\(fields)")
        XCTAssertTrue(fields.contains("solver.rtol"), "\(fields)")
        let result = d["outputs"]?.arrayValue?.first { $0["name"] == "result.json" }
        XCTAssertEqual(result?["verdict"], "DIVERGENT")
        let diffs = result?["differences"]?.arrayValue ?? []
        XCTAssertTrue(diffs.contains { $0["location"] == "n" && $0["old"] == "10" && $0["new"] == "11" }, "\(diffs)")
        XCTAssertTrue(diffs.contains { $0["location"] == "rtol" }, "\(diffs)")
        let csv = d["outputs"]?.arrayValue?.first { $0["name"] == "traj/0.csv" }
        XCTAssertEqual(csv?["differences"]?.arrayValue?.first?["location"], "row 0, column 3")
        let text = repro(["diff", a["run_id"]?.stringValue ?? "", b["run_id"]?.stringValue ?? ""], cwd: repo.path).out
        XCTAssertTrue(text.contains("params.n: 10 → 11"), text)
    }

    func testFsckFindsAFlippedByteAndAMissingBlob() throws {
        let repo = try TempRepo.seeded()
        let run = runJSON(repo, ["run", "sim.yaml"])
        XCTAssertEqual(repro(["fsck"], cwd: repo.path).code, 0)
        let store = try Store(root: repo.path + "/.repro")
        let outputs = run["outputs"]?.arrayValue ?? []
        let flipped = store.blobPath(outputs[0]["sha256"]?.stringValue ?? "")
        chmod(flipped, 0o644)
        var bytes = Array(FileManager.default.contents(atPath: flipped) ?? Data())
        bytes[bytes.count / 2] ^= 0x01
        FileManager.default.createFile(atPath: flipped, contents: Data(bytes))
        let missing = store.blobPath(outputs[1]["sha256"]?.stringValue ?? "")
        try FileManager.default.removeItem(atPath: missing)

        let r = repro(["fsck", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 4, "damage exits 4")
        let report = parseJSON(r.out)
        let kinds = (report["problems"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue }
        XCTAssertTrue(kinds.contains("corrupt-blob"), r.out)
        XCTAssertTrue(kinds.contains("missing-blob"), r.out)
        XCTAssertEqual(report["integrity_check"], ["ok"])
    }

    func testProvJSONParsesWithThePROVPackage() throws {
        let repo = try TempRepo.seeded()
        let run = runJSON(repo, ["run", "sim.yaml"])
        let export = repro(["export", run["run_id"]?.stringValue ?? "", "--format", "prov-json"], cwd: repo.path)
        XCTAssertEqual(export.code, 0, export.err)
        let file = repo.path + "/.git/prov.json"
        FileManager.default.createFile(atPath: file, contents: Data(export.out.utf8))
        let script = """
            import sys
            import prov.model as m
            doc = m.ProvDocument.deserialize(source=sys.argv[1], format='json')
            acts = [r for r in doc.get_records() if isinstance(r, m.ProvActivity)]
            ents = [r for r in doc.get_records() if isinstance(r, m.ProvEntity)]
            gens = [r for r in doc.get_records() if isinstance(r, m.ProvGeneration)]
            uses = [r for r in doc.get_records() if isinstance(r, m.ProvUsage)]
            assocs = [r for r in doc.get_records() if isinstance(r, m.ProvAssociation)]
            print(len(acts), len(ents), len(gens), len(uses), len(assocs))
            """
        let r = sh(["python3", "-c", script, file], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        // 1 activity; config + code tree + 1 input + 4 outputs; 4 generations; 3 usages; user + host.
        XCTAssertEqual(r.out, "1 7 4 3 2\n", r.err)
    }

    func testAttestationVerifiesAndFailsOnChangedOutputStatementOrKey() throws {
        let repo = try TempRepo.seeded()
        let run = runJSON(repo, ["run", "sim.yaml"])
        let id = run["run_id"]?.stringValue ?? ""
        let keys = repo.path + "/.git/keys"
        try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
        XCTAssertEqual(repro(["keygen", "--out", keys + "/signer"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["keygen", "--out", keys + "/other"], cwd: repo.path).code, 0)
        let mode = (try FileManager.default.attributesOfItem(atPath: keys + "/signer")[.posixPermissions] as? Int) ?? 0
        XCTAssertEqual(mode, 0o600)
        // openssl reads the keys: they are standard PEM.
        XCTAssertEqual(sh(["openssl", "pkey", "-in", keys + "/signer", "-noout"], cwd: repo.path).code, 0)

        let attest = repro(["attest", id, "--key", keys + "/signer", "--out", keys + "/envelope.json"], cwd: repo.path)
        XCTAssertEqual(attest.code, 0, attest.err)
        let envelope = parseJSON((try? String(contentsOfFile: keys + "/envelope.json", encoding: .utf8)) ?? "")
        let statement = parseJSON(String(decoding: Data(base64Encoded: envelope["payload"]?.stringValue ?? "") ?? Data(), as: UTF8.self))
        XCTAssertEqual(statement["_type"], "https://in-toto.io/Statement/v1")
        XCTAssertEqual(statement["subject"]?.arrayValue?.count, 4)

        let output = run["outputs"]?.arrayValue?.first?["path"]?.stringValue ?? ""
        let good = repro(["audit", output, "--verify-attestation", "--pubkey", keys + "/signer.pub"], cwd: repo.path)
        XCTAssertEqual(good.code, 0, good.err)
        XCTAssertTrue(good.out.contains("signature and outputs verified"), good.out)

        // Wrong key.
        let wrong = repro(["audit", id, "--verify-attestation", "--pubkey", keys + "/other.pub"], cwd: repo.path)
        XCTAssertEqual(wrong.code, 1)
        XCTAssertTrue(wrong.err.contains("signature does not verify"), wrong.err)

        // One byte of the statement changed (in the envelope file written with --out).
        var payload = Array(Data(base64Encoded: envelope["payload"]?.stringValue ?? "") ?? Data())
        if let i = payload.firstIndex(of: UInt8(ascii: "4")) { payload[i] = UInt8(ascii: "5") }
        var tampered = envelope.objectValue ?? [:]
        tampered["payload"] = .string(Data(payload).base64EncodedString())
        FileManager.default.createFile(atPath: keys + "/tampered.json", contents: Data(JSONValue.object(tampered).pretty.utf8))
        let changedStatement = repro(
            ["audit", id, "--verify-attestation", "--pubkey", keys + "/signer.pub", "--attestation", keys + "/tampered.json"],
            cwd: repo.path)
        XCTAssertEqual(changedStatement.code, 1)
        XCTAssertTrue(changedStatement.err.contains("signature does not verify"), changedStatement.err)

        // One byte of an output changed: the materialized copy no longer matches any attested run...
        var content = Array(FileManager.default.contents(atPath: output) ?? Data())
        content[0] ^= 0x20
        FileManager.default.createFile(atPath: output + ".changed", contents: Data(content))
        let changedFile = repro(["audit", output + ".changed", "--verify-attestation", "--pubkey", keys + "/signer.pub"], cwd: repo.path)
        XCTAssertEqual(changedFile.code, 1)
        XCTAssertTrue(changedFile.err.contains("verification failed"), changedFile.err)
        // ...and the same byte changed inside the store is caught against the attested digest.
        let store = try Store(root: repo.path + "/.repro")
        let sha = run["outputs"]?.arrayValue?.first?["sha256"]?.stringValue ?? ""
        chmod(store.blobPath(sha), 0o644)
        FileManager.default.createFile(atPath: store.blobPath(sha), contents: Data(try Zlib.compress(content)))
        let changedBlob = repro(["audit", id, "--verify-attestation", "--pubkey", keys + "/signer.pub"], cwd: repo.path)
        XCTAssertEqual(changedBlob.code, 1)
        XCTAssertTrue(changedBlob.err.contains("no longer matches its attested sha256"), changedBlob.err)
    }
}
