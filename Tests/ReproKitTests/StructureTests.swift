import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote
@testable import ReproStore

/// The shape the code keeps: one descriptor per backend type, read everywhere through the
/// registry; no file past 400 lines.
final class StructureTests: XCTestCase {
    func testEveryBackendTypeHasOneDescriptorAndItsSettingsAreTyped() throws {
        XCTAssertEqual(Backends.types, ["local", "slurm", "slurm-rest", "aws-batch", "azure-batch"])
        XCTAssertEqual(Set(Backends.types).count, Backends.types.count, "a type name is registered once")
        XCTAssertEqual(Backends.builtIn, ["local", "slurm"])
        let yaml = """
            backends:
              here: {type: local}
              hpc: {type: slurm, workdir: /shared/w}
              rest: {type: slurm-rest, url: "https://c.example.org", user: u, token_env: T, staging: "s3://stage-bucket/p", max_retries: 5}
              aws: {type: aws-batch, job_queue: q, job_definition: d, staging: "s3://stage-bucket/a", endpoint: "http://127.0.0.1:9000"}
              az: {type: azure-batch, account_url: "https://a.westeurope.batch.azure.com", pool_id: p, storage_account: s, container: c}
            """
        let repo = try TempRepo()
        repo.write(".repro/config.yaml", yaml)
        let c = try StoreConfig.load(storeRoot: repo.path + "/.repro", repoRoot: repo.path)
        XCTAssertTrue(c.backends["here"]?.options is LocalSettings)
        XCTAssertEqual((c.backends["hpc"]?.options as? SlurmSettings)?.workdir, "/shared/w")
        XCTAssertEqual((c.backends["rest"]?.options as? SlurmRestSettings)?.user, "u")
        XCTAssertEqual(c.maxRetries(backend: "rest"), 5)
        XCTAssertEqual(c.backends["aws"]?.options.objectStoreEndpoint, "http://127.0.0.1:9000")
        XCTAssertEqual((c.backends["az"]?.options as? AzureBatchSettings)?.staging?.description, "az://c/repro-staging")
        // Traits come from the type, and a made backend reports its type's.
        for (name, shares, inProcess) in [("here", true, true), ("hpc", true, false), ("rest", false, false), ("aws", false, false), ("az", false, false)] {
            let t = Backends.traits(of: name, config: c)
            XCTAssertEqual(t.sharesFileSystem, shares, name)
            XCTAssertEqual(t.runsInProcess, inProcess, name)
            XCTAssertEqual(t.outlivesSubmitter, !inProcess, name)
        }
        let store = try Store(root: repo.path + "/.repro")
        let local = try Backends.make("here", store: store, repoRoot: repo.path, jobs: 1, environment: [:], config: c)
        XCTAssertEqual(local.capabilities, LocalBackend.traits)
        XCTAssertEqual(local.type, "local")
        // A key of another type is unknown here, and the error lists this type's keys.
        repo.write(".repro/config.yaml", "backends:\n  aws: {type: aws-batch, job_queue: q, job_definition: d, staging: \"s3://stage-bucket/a\", url: x}\n")
        XCTAssertThrowsError(try StoreConfig.load(storeRoot: repo.path + "/.repro", repoRoot: repo.path)) { e in
            let m = (e as? ConfigError)?.message ?? "\(e)"
            XCTAssertTrue(m.contains("config.yaml:2: unknown key 'backends.aws.url'; known for aws-batch: job_queue, job_definition, batch_endpoint, staging"), m)
        }
    }

    /// A record's typed parts write back exactly the JSON the store holds and a manifest
    /// carries: read from the store, from the record's JSON, and written again, byte for byte.
    func testTypedRecordPartsWriteTheBytesTheStoreKeeps() throws {
        let repo = try TempRepo.seeded()
        let first = try runSpec(repo)
        let store = try Store(root: repo.path + "/.repro")
        // Every structured part present: an attempt, routing, an estimate, a fallback, a
        // submitter and an origin, as the store would hold them after such a run.
        var r = try XCTUnwrap(try store.run(id: first.record.runId))
        XCTAssertNotNil(r.routing)
        XCTAssertNotNil(r.estimate)
        r.interpreter = InterpreterInfo(
            language: "python", path: "/v/bin/python", version: "3.11.7", implementation: "CPython", packages: [], prefix: "/v", basePrefix: "/usr",
            environmentKind: "venv")
        r.fallback = Fallback(from: "cloud", to: "local", reason: "HTTP 503", stage: "submit", at: "2026-01-01T00:00:00.000Z")
        r.submitter = Submitter(user: "alice", host: "laptop")
        r.attempts.append(Attempt(backend: "cloud", type: "slurm-rest", outcome: Attempt.backendFailure, stage: "submit", reason: "x", durationS: 0.5, finishedAt: "2026-01-01T00:00:00.000Z"))
        r.runId = "typed-" + r.runId
        try store.insertRunning(r)
        let db = repo.path + "/.repro/store.sqlite"
        let columns = ["code_json", "env_json", "interpreter_json", "estimate_json", "routing_json", "attempts_json", "fallback_json", "submitter_json"]
        let raw = sh(["sqlite3", "-separator", "\u{1}", db, "SELECT \(columns.joined(separator: ", ")) FROM runs WHERE run_id = '\(r.runId)'"], cwd: "/")
            .out.trimmingCharacters(in: .newlines).components(separatedBy: "\u{1}")
        XCTAssertEqual(raw.count, columns.count, raw.joined(separator: " | "))
        let back = try XCTUnwrap(try store.run(id: r.runId))
        let typed: [String?] = [
            back.code.json.canonical, back.envJSON.canonical, back.interpreter?.json.canonical, back.estimate?.json.canonical,
            back.routing?.json.canonical, JSONValue.array(back.attempts.map(\.json)).canonical, back.fallback?.json.canonical,
            back.submitter?.json.canonical,
        ]
        for (i, name) in columns.enumerated() where i < raw.count {
            XCTAssertEqual(typed[i] ?? "", raw[i], name)
        }
        // Through a manifest's JSON and back: the same record, the same bytes.
        // (Where the task was staged is the producer's own business: a manifest drops it.)
        var again = try RunRecord(json: back.json, source: "test")
        XCTAssertNil(again.taskRef)
        again.taskRef = back.taskRef
        XCTAssertEqual(again.json.canonical, back.json.canonical)
        // A record stored whole (a pulled run) keeps who submitted it.
        XCTAssertEqual(back.submitter, Submitter(user: "alice", host: "laptop"))
        // A part missing a field it must have is refused, never half-read.
        var broken = back.json.objectValue ?? [:]
        broken["routing"] = ["reason": "no backend or by"]
        XCTAssertThrowsError(try RunRecord(json: .object(broken), source: "m.json")) { e in
            XCTAssertTrue("\(e)".contains("m.json: the run record's 'routing' lacks fields it must have"), "\(e)")
        }
    }

    /// A config error carries where it is (file, line, key path) as fields; the message is
    /// rendered from them.
    func testAConfigErrorCarriesItsFileLineAndKeyPath() throws {
        let repo = try TempRepo()
        repo.write(".repro/config.yaml", "orchestration:\n  thresholds: {local_below: 1h}\n  budget:\n    per_run: lots\n")
        XCTAssertThrowsError(try StoreConfig.load(storeRoot: repo.path + "/.repro", repoRoot: repo.path)) { e in
            guard let c = e as? ConfigError else { return XCTFail("not a config error: \(e)") }
            XCTAssertEqual(c.file.map { ($0 as NSString).lastPathComponent }, "config.yaml")
            XCTAssertEqual(c.line, 4)
            XCTAssertEqual(c.keyPath, "orchestration.budget.per_run")
            XCTAssertEqual(c.message, "\(c.file ?? ""):4: orchestration.budget.per_run \(c.problem)")
            XCTAssertTrue(c.problem.hasPrefix("must be an amount"), c.problem)
            XCTAssertEqual(c.exitCode, 2)
        }
        // A place given as text ("FILE:LINE", or a name such as --set) reads the same.
        let set = ConfigError(at: "--set", key: "params.x", "is not a number")
        XCTAssertEqual(set.file, "--set")
        XCTAssertNil(set.line)
        XCTAssertEqual(set.message, "--set: params.x is not a number")
        XCTAssertEqual(ConfigError(at: "a/sim.yaml:12", "oops").line, 12)
    }

    /// Shared code asks a backend's traits, never its name: no backend type or name literal is
    /// compared outside the ReproExecution module (the top-level `slurm:` config section is a
    /// key, not a type).
    func testNoBackendTypeStringsOutsideExecution() throws {
        let root = TestPaths.root + "/Sources"
        let files = sh(["sh", "-c", "find \(root) -name '*.swift' -not -path '*/ReproExecution/*'"], cwd: "/").out.split(separator: "\n")
        XCTAssertGreaterThan(files.count, 50)
        var found: [String] = []
        for f in files {
            let text = (try? String(contentsOfFile: String(f), encoding: .utf8)) ?? ""
            for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                for word in ["\"local\"", "\"slurm-rest\"", "\"aws-batch\"", "\"azure-batch\"", "== \"slurm\"", "!= \"slurm\""] where line.contains(word) {
                    found.append("\(f.split(separator: "/").suffix(2).joined(separator: "/")):\(i + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        XCTAssertEqual(found, [], found.joined(separator: "\n"))
    }

    func testNoSourceFileIsPast400Lines() throws {
        let root = TestPaths.root + "/Sources"
        let out = sh(["sh", "-c", "find \(root) -name '*.swift' -exec wc -l {} + | sort -n"], cwd: "/").out
        let long = out.split(separator: "\n").compactMap { line -> String? in
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[1] != "total", let n = Int(parts[0]), n > 400 else { return nil }
            return String(line)
        }
        XCTAssertEqual(long, [], long.joined(separator: "\n"))
    }
}

/// Service answers are read by a real XML reader: entities, attributes, CDATA, namespaces.
final class XMLTextTests: XCTestCase {
    func testAListingWithEntitiesAttributesAndNamespacesReadsAsWritten() throws {
        let body = """
            <?xml version="1.0" encoding="UTF-8"?>
            <!-- a listing -->
            <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
              <Contents><Key>a&amp;b &lt;c&gt; &#x263A; &#233;</Key><Size>12</Size><ETag>&quot;abc&quot;</ETag></Contents>
              <Contents><Key><![CDATA[x<y>&z]]></Key><Size>3</Size></Contents>
              <s3:Contents xmlns:s3="urn:x"><s3:Key attr='q"uote' other="1">k3</s3:Key></s3:Contents>
              <Empty/><IsTruncated>false</IsTruncated>
            </ListBucketResult>
            """
        let root = try XMLText.parse(body)
        XCTAssertEqual(root.name, "ListBucketResult")
        let items = root.all("Contents")
        XCTAssertEqual(items.map { $0.text(of: "Key") }, ["a&b <c> ☺ é", "x<y>&z", "k3"])
        XCTAssertEqual(items[0].text(of: "ETag"), "\"abc\"", "entities in an ETag are decoded")
        XCTAssertEqual(items[2].first("Key")?.attributes["attr"], "q\"uote")
        XCTAssertEqual(root.text(of: "IsTruncated"), "false")
        XCTAssertEqual(root.first("Empty")?.text, "")
        XCTAssertEqual(XMLText.first("Size", in: body), "12")
    }

    func testWhatIsNotWellFormedIsRefusedNotReadAsEmpty() {
        for bad in ["", "<html><body>502 Bad Gateway", "<a><b></a></b>", "<a>&bogus;</a>", "<!DOCTYPE x [<!ENTITY e 'boom'>]><a>&e;</a>", "<a x=1></a>", "<a></a><b/>"] {
            XCTAssertThrowsError(try XMLText.parse(bad), bad)
            XCTAssertNil(XMLText.root(bad), bad)
        }
    }
}
