import Foundation
import XCTest

@testable import ReproKit

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
        XCTAssertEqual((c.backends["hpc"]?.options as? StoreConfig.Slurm)?.workdir, "/shared/w")
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

    /// Shared code asks a backend's traits, never its name: no backend type or name literal is
    /// compared outside Execution/ (the top-level `slurm:` config section is a key, not a type).
    func testNoBackendTypeStringsOutsideExecution() throws {
        let root = TestPaths.root + "/Sources"
        let files = sh(["sh", "-c", "find \(root) -name '*.swift' -not -path '*/Execution/*'"], cwd: "/").out.split(separator: "\n")
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
