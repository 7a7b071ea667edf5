import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproSupport
@testable import ReproRemote
@testable import ReproStore

/// Spec parsing, YAML 1.2 scalars, canonical JSON and command templating.
final class ConfigTests: XCTestCase {
    func spec(_ yaml: String, set: [String] = []) throws -> SimulationSpec {
        try SpecLoader.parse(text: yaml, file: "t.yaml", overrides: set)
    }

    func testYAML12Scalars() {
        XCTAssertEqual(YAMLCore.resolve("1e-6"), .double(1e-6))
        XCTAssertEqual(YAMLCore.resolve("1E+3"), .double(1000))
        XCTAssertEqual(YAMLCore.resolve(".5"), .double(0.5))
        XCTAssertEqual(YAMLCore.resolve("0.000001"), .double(1e-6))
        XCTAssertEqual(YAMLCore.resolve("42"), .int(42))
        XCTAssertEqual(YAMLCore.resolve("0755"), .int(755), "YAML 1.2 has no implicit octal")
        XCTAssertEqual(YAMLCore.resolve("0o17"), .int(15))
        XCTAssertEqual(YAMLCore.resolve("0x1F"), .int(31))
        XCTAssertEqual(YAMLCore.resolve("yes"), .string("yes"), "YAML 1.1 booleans are strings in 1.2")
        XCTAssertEqual(YAMLCore.resolve("on"), .string("on"))
        XCTAssertEqual(YAMLCore.resolve("1:30"), .string("1:30"), "no sexagesimal numbers")
        XCTAssertEqual(YAMLCore.resolve("2026-01-01"), .string("2026-01-01"))
        XCTAssertEqual(YAMLCore.resolve("true"), .bool(true))
        XCTAssertEqual(YAMLCore.resolve("~"), .null)
        XCTAssertEqual(YAMLCore.resolve("1e"), .string("1e"))
        XCTAssertNotNil(YAMLCore.unrepresentable("99999999999999999999"))
        XCTAssertNotNil(YAMLCore.unrepresentable(".nan"))
    }

    func testSpecNumbersAndQuotedStrings() throws {
        let s = try spec("name: a\ncommand: [x]\nparams: {tol: 1e-6, q: '1e-6', n: 3, f: 3.0, v: 0755}\nsolver: {rtol: 1e-6}\n")
        XCTAssertEqual(s.params["tol"], .double(1e-6))
        XCTAssertEqual(s.params["q"], .string("1e-6"))
        XCTAssertEqual(s.params["n"], .int(3))
        XCTAssertEqual(s.params["f"], .double(3.0))
        XCTAssertEqual(s.params["v"], .int(755))
        XCTAssertEqual(s.rtol, 1e-6)
    }

    func testIntegersAndFloatsHashDifferently() throws {
        let a = try spec("name: a\ncommand: [x]\nparams: {n: 3}\n")
        let b = try spec("name: a\ncommand: [x]\nparams: {n: 3.0}\n")
        XCTAssertNotEqual(a.configHash, b.configHash)
    }

    func testConfigHashIgnoresOrderStyleCommentsAndNumberSpelling() throws {
        let a = try spec("name: a\ncommand: [x, y]\nparams: {p: 1e-6, q: [1, 2]}\nsolver: {rtol: 1e-6, atol: 1e-9}\n")
        let b = try spec(
            """
            # a comment
            solver:
              atol: 0.000000001
              rtol: 1.0e-6
            params:
              q:
                - 1
                - 2
              p: 0.000001
            command: "x y"
            name: a
            """)
        XCTAssertEqual(a.configHash, b.configHash)
        // The name is a label, not part of what is computed.
        XCTAssertEqual(try spec("name: other\ncommand: [x, y]\nparams: {p: 1e-6, q: [1, 2]}\nsolver: {rtol: 1e-6, atol: 1e-9}\n").configHash, a.configHash)
    }

    /// Canonical JSON sorts keys by UTF-16 code units (RFC 8785), which differs from code-point
    /// and UTF-8 order between U+E000...U+FFFF and characters past U+FFFF.
    func testCanonicalKeyOrderIsUTF16Order() {
        let keys = ["a", "b", "ab", "", "Z", "é", "\u{FFFD}", "\u{E000}", "😀", "\u{10000}", "a😀", "a\u{FFFD}", "a\u{E000}x", "\u{7FF}", "\u{800}"]
        for a in keys {
            for b in keys {
                XCTAssertEqual(JSONValue.utf16Precedes(a, b), a.utf16.lexicographicallyPrecedes(b.utf16), "\(a) vs \(b)")
            }
        }
        let object = JSONValue.object(Dictionary(uniqueKeysWithValues: keys.map { ($0, JSONValue.int(1)) }))
        let order = keys.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
        XCTAssertEqual(object.canonical, "{" + order.map { "\"\($0)\":1" }.joined(separator: ",") + "}")
    }

    /// What is hashed for config hashes and keys: the exact text, escapes and nesting included
    /// (a change here would make every cached result miss).
    func testCanonicalTextIsExact() {
        let v: JSONValue = [
            "z": [1, 2.5, "x", .null, true, [], [:]], "a\"q": "tab\tnew\nline\u{01}\\é😀", "m": ["b": 1, "a": ["c": false]], "": -7,
        ]
        let expected = #"{"":-7,"a\"q":"tab\tnew\nline\u0001\\é😀","m":{"a":{"c":false},"b":1},"z":[1,2.5,"x",null,true,[],{}]}"#
        XCTAssertEqual(v.canonical, expected)
        XCTAssertEqual(v.canonicalBytes, Array(expected.utf8))
        XCTAssertEqual(Hashing.sha256Hex(v.canonicalBytes), Hashing.sha256Hex(expected))
    }

    /// The config hash and the cache key are written straight into bytes; they must be exactly
    /// the canonical JSON of the records they stand for (else every cached result would miss,
    /// or two records could share a key).
    func testDirectCanonicalWritersMatchTheRecords() throws {
        let specs = [
            try spec("name: a\ncommand: [x, \"{params.p}\"]\nparams: {p: 1e-6, q: [1, 2], \"é\": {z: null}}\n"),
            try spec(
                "name: b\ncommand: \"python3 sim.py --n 3\"\ncode: [src, lib]\ninputs: [data/a.csv]\noutputs: [out.json]\nseed: 7\n"
                    + "solver: {rtol: 1e-6, atol: 1e-9, method: rk45}\nenv: {B: \"2\", A: \"x\\ny\", Z_9: \"😀\\u0001\"}\nenv_passthrough: [HOME]\n"),
        ]
        for s in specs {
            XCTAssertEqual(s.semanticConfigCanonical, s.semanticConfig.canonicalBytes, s.name)
        }
        var code = CodeIdentity(
            commit: "c0ffee", commitSummary: "x", entries: [.init(path: ".", kind: "tree", id: "abc")], submodules: [("sub", "def")],
            dirtyFiles: [])
        for withLinks in [false, true] {
            if withLinks { code.links = [.init(path: "l", target: "../t", id: "0123")] }
            for s in specs {
                for patch in [nil, "ff00"] as [String?] {
                    let parts = CacheKey.Parts(
                        configHash: s.configHash, code: code, patchHash: patch, seed: s.resolvedSeed, solver: s.solver,
                        inputs: [InputFile(path: "data/a.csv", sha256: "aa", size: 3), InputFile(path: "b\"c", sha256: "bb", size: 1)],
                        env: s.env, command: s.command)
                    XCTAssertEqual(CacheKey.canonicalRecord(parts), CacheKey.record(parts).canonicalBytes)
                    XCTAssertEqual(CacheKey.compute(parts), Hashing.sha256Hex(CacheKey.record(parts).canonical))
                }
            }
        }
    }

    /// A sweep holds its keys as 32-byte digests: every key comes back exactly, and anything
    /// that is not 64 lowercase hex digits is refused.
    func testKeyDigestRoundTripsAndRefusesOtherText() {
        for i in 0..<200 {
            let key = Hashing.sha256Hex("key-\(i)")
            XCTAssertEqual(KeyDigest(hex: key)?.hex, key)
        }
        let k = Hashing.sha256Hex("x")
        XCTAssertNotEqual(KeyDigest(hex: k), KeyDigest(hex: Hashing.sha256Hex("y")))
        for bad in [String(k.dropLast()), k + "0", k.uppercased(), "g" + k.dropFirst(), ""] {
            XCTAssertNil(KeyDigest(hex: bad), bad)
        }
    }

    /// The C library's formatting gives what Foundation's String(format:) gives for the
    /// conversions repro uses, long results included.
    func testCFormatMatchesStringFormat() {
        for d in [0.0, 1e-6, 1e-9, 0.5, 2.5, 1234.5678, 1e21, -3.25, 119.999, 0.0004] {
            for f in ["%g", "%.1fs", "%.2fs", "%.0fms", "%.4f", "%.1f ", "%e"] {
                XCTAssertEqual(cFormat(f, d), String(format: f, d), "\(f) \(d)")
            }
        }
        XCTAssertEqual(cFormat("%.300f", 1.0).count, 302, "a result longer than the first buffer")
    }

    func testCanonicalNumbersFollowRFC8785ButKeepFloatsDistinct() {
        XCTAssertEqual(NumberFormat.canonical(1e-6), "0.000001")
        XCTAssertEqual(NumberFormat.canonical(1e-7), "1e-7")
        XCTAssertEqual(NumberFormat.canonical(2.0), "2.0")
        XCTAssertEqual(NumberFormat.canonical(-0.0), "0.0")
        XCTAssertEqual(NumberFormat.canonical(123.456), "123.456")
        XCTAssertEqual(NumberFormat.canonical(1e21), "1e+21")
        XCTAssertEqual(NumberFormat.canonical(1e20), "100000000000000000000.0")
        XCTAssertEqual(NumberFormat.canonical(0.1), "0.1")
        XCTAssertEqual(NumberFormat.canonical(5e-324), "5e-324")
        XCTAssertEqual(NumberFormat.canonical(1.7976931348623157e308), "1.7976931348623157e+308")
        XCTAssertEqual(NumberFormat.canonical(-1.5e-9), "-1.5e-9")
        let v: JSONValue = ["b": 1, "a": [true, .null, 2.5, "x\"y\n"]]
        XCTAssertEqual(v.canonical, #"{"a":[true,null,2.5,"x\"y\n"],"b":1}"#)
        XCTAssertEqual(try JSONParser.parse(v.canonical), v)
    }

    func testOverridesAreYAMLScalarsAndCreatePaths() throws {
        let s = try spec(
            "name: a\ncommand: [x]\nparams: {n: 1}\nsolver: {rtol: 1e-6}\n",
            set: ["params.n=2000", "solver.rtol=1e-8", "params.deep.x=yes", "params.list=[1, 2]", "seed=9"])
        XCTAssertEqual(s.params["n"], .int(2000))
        XCTAssertEqual(s.rtol, 1e-8)
        XCTAssertEqual(s.params["deep"]?["x"], .string("yes"))
        XCTAssertEqual(s.params["list"], .array([.int(1), .int(2)]))
        XCTAssertEqual(s.seed, .fixed(9))
        XCTAssertThrowsError(try spec("name: a\ncommand: [x]\n", set: ["params.n"]))
        XCTAssertThrowsError(try spec("name: a\ncommand: [x]\n", set: ["colour=red"]))
    }

    func testValidationMessagesNameFileKeyAndLine() {
        func message(_ yaml: String) -> String {
            do {
                _ = try spec(yaml)
                return ""
            } catch { return "\(error)" }
        }
        XCTAssertTrue(message("name: a\ncommand: [x]\nsolver:\n  rtol: -1\n").contains("t.yaml:4: solver.rtol must be finite and >= 0"))
        XCTAssertTrue(message("name: a\ncommand: [x]\nsolver: {rtol: fast}\n").contains("solver.rtol must be a number"))
        XCTAssertTrue(message("name: a\ncommand: [x]\nparams: [1]\n").contains("params must be a mapping"))
        XCTAssertTrue(message("name: 'a b'\ncommand: [x]\n").contains("may only contain"))
        XCTAssertTrue(message("name: a\ncommand: []\n").contains("command is empty"))
        XCTAssertTrue(message("name: a\ncommand: [x]\ncode: [../outside]\n").contains("without '..'"))
        XCTAssertTrue(message("name: a\ncommand: [x]\ntimeout: soon\n").contains("not a duration"))
        XCTAssertTrue(message("name: a\ncommand: [x]\nbackend: 'mars rover'\n").contains("is not a backend name"))
        XCTAssertTrue(message("name: a\ncommand: [x]\nname: b\n").contains("appears more than once"))
        XCTAssertTrue(message("- just\n- a list\n").contains("must be a mapping"))
    }

    func testShellWordsAndDurations() throws {
        XCTAssertEqual(try ShellWords.split(#"python3 sim.py --label "two words" 'it''s' a\ b $HOME"#),
            ["python3", "sim.py", "--label", "two words", "its", "a b", "$HOME"])
        XCTAssertThrowsError(try ShellWords.split("echo 'open"))
        XCTAssertEqual(DurationText.seconds("2h"), 7200)
        XCTAssertEqual(DurationText.seconds("1h30m"), 5400)
        XCTAssertEqual(DurationText.seconds("45"), 45)
        XCTAssertEqual(DurationText.seconds("1.5s"), 1.5)
        XCTAssertNil(DurationText.seconds("2x"))
        XCTAssertEqual(DurationText.format(5400), "1h30m")
    }

    func testCommandTemplates() throws {
        let ctx = CommandTemplate.Context(
            params: ["population_size": 1000, "nested": ["a": 2.5], "list": ["x", 1]],
            solver: ["rtol": 1e-6, "method": "rk45"], seed: 42, outdir: "/o", config: "/c.json")
        XCTAssertEqual(
            try CommandTemplate.render(
                ["sim", "--n={params.population_size}", "{params.nested.a}", "{seed}", "{rtol}", "{solver.method}", "{outdir}",
                    "{config}", "{{literal}}", "{params.list}"], ctx),
            ["sim", "--n=1000", "2.5", "42", "0.000001", "rk45", "/o", "/c.json", "{literal}", #"["x",1]"#])
        XCTAssertThrowsError(try CommandTemplate.render(["{atol}"], ctx))
        XCTAssertThrowsError(try CommandTemplate.render(["{bogus}"], ctx))
        XCTAssertThrowsError(try CommandTemplate.render(["{seed"], ctx))
    }

    func testOutputPatterns() {
        XCTAssertTrue(OutputCollector.matches("traj/*.csv", "traj/a.csv"))
        XCTAssertFalse(OutputCollector.matches("traj/*.csv", "traj/sub/a.csv"))
        XCTAssertTrue(OutputCollector.matches("traj/**.csv", "traj/sub/a.csv"))
        XCTAssertTrue(OutputCollector.matches("traj/", "traj/sub/a.csv"))
        XCTAssertTrue(OutputCollector.matches("traj", "traj/a.csv"))
        XCTAssertFalse(OutputCollector.matches("*.json", "sub/result.json"))
    }

    func testProjectFileAndLocalOverrideNameBackendsAndRefuseSecrets() throws {
        let repo = try TempRepo.seeded()
        repo.write(".repro.yaml", """
            cache: {max_age: 7d}
            backends:
              cloud:
                type: slurm-rest
                url: http://cluster.example.org:6820/
                user: alice
                token_env: SLURM_JWT
                staging: s3://team-bucket/staging
                repro_path: /opt/repro/bin/repro
              shared:
                type: slurm
                workdir: /shared/repro
            """)
        try FileManager.default.createDirectory(atPath: repo.path + "/.repro", withIntermediateDirectories: true)
        repo.write(".repro/config.yaml", "backends:\n  cloud:\n    staging: s3://my-bucket/me\n    poll_interval: 5s\n")
        let c = try StoreConfig.load(storeRoot: repo.path + "/.repro", repoRoot: repo.path)
        XCTAssertEqual(c.maxAge, 7 * 86400)
        XCTAssertEqual(c.backends["cloud"]?.type, "slurm-rest")
        let cloud = try XCTUnwrap(c.backends["cloud"]?.options as? SlurmRestSettings, "typed slurm-rest settings")
        XCTAssertEqual(cloud.url, "http://cluster.example.org:6820")
        XCTAssertEqual(cloud.staging, S3Location(bucket: "my-bucket", prefix: "me"), "the local file wins key by key")
        XCTAssertEqual(cloud.user, "alice", "keys the local file does not set stay")
        XCTAssertEqual(cloud.pollInterval, 5)
        XCTAssertEqual((c.backends["shared"]?.options as? SlurmSettings)?.workdir, "/shared/repro")

        func error(_ yaml: String) -> String {
            repo.write(".repro.yaml", yaml)
            do {
                _ = try StoreConfig.load(storeRoot: repo.path + "/.repro", repoRoot: repo.path)
                return ""
            } catch { return "\(error)" }
        }
        unlink(repo.path + "/.repro/config.yaml")
        let secret = error("backends:\n  cloud:\n    type: slurm-rest\n    token: eyJhbGciOi\n")
        XCTAssertTrue(secret.contains(".repro.yaml:4") && secret.contains("secrets do not belong"), secret)
        XCTAssertFalse(secret.contains("eyJhbGciOi"), "the secret is not echoed")
        XCTAssertTrue(error("backends:\n  cloud:\n    type: slurm-rest\n    url: http://x\n").contains("needs user, staging, token_env, token_file, token_command or token_key_file"))
        XCTAssertTrue(error("backends:\n  cloud:\n    type: mainframe\n").contains("type 'mainframe' is unknown"))
        XCTAssertTrue(error("backends:\n  cloud:\n    type: slurm-rest\n    staging: gs://b/p\n").contains("is not an s3:// URL"))

        // A backend nobody configured is refused before anything is recorded (exit 2).
        unlink(repo.path + "/.repro.yaml")
        let r = repro(["run", "sim.yaml", "--backend", "mars"], cwd: repo.path)
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("backend 'mars' is not available") && r.err.contains("known here: local, slurm"), r.err)
        let runs = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "SELECT count(*) FROM runs"], cwd: "/")
        XCTAssertEqual(runs.out.trimmingCharacters(in: .whitespacesAndNewlines), "0")
    }

    /// Spec paths are recorded relative to the repository, through `.`, `..` and symlinks.
    func testSpecPathsAreRecordedRelativeToTheRepository() throws {
        let base = NSTemporaryDirectory() + "repro-relpath-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/repo/sims", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        try FileManager.default.createSymbolicLink(atPath: base + "/link", withDestinationPath: base + "/repo")
        let repo = base + "/repo"
        XCTAssertEqual(RepoPath.relative(repo + "/sims/./a/../sim.yaml", repo: repo), "sims/sim.yaml")
        XCTAssertEqual(RepoPath.relative(repo + "//sim.yaml", repo: repo), "sim.yaml")
        // Reached through a symlink to the repository, or with the repository named through one.
        XCTAssertEqual(RepoPath.relative(base + "/link/sims/sim.yaml", repo: repo), "sims/sim.yaml")
        XCTAssertEqual(RepoPath.relative(repo + "/sims/sim.yaml", repo: base + "/link"), "sims/sim.yaml")
        // Outside: the clean absolute path.
        XCTAssertEqual(RepoPath.relative(base + "/other/../elsewhere/x.yaml", repo: repo), base + "/elsewhere/x.yaml")
        XCTAssertEqual(RepoPath.relative("/", repo: repo), "/")
    }
}
