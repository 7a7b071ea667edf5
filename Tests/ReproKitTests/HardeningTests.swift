import Foundation
import XCTest

@testable import ReproExecution
@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// Things an adversarial review found: runs served or killed that should not be, files written
/// where they should not be, blobs that could never be repaired.
final class HardeningTests: XCTestCase {
    /// A perturbed run is unservable from the moment it exists: the simulation itself asks the
    /// store, while it runs, whether its record is already invalidated.
    func testPerturbedRunsAreInvalidatedWhenRecorded() throws {
        let repo = try TempRepo()
        repo.write(
            "sim.sh",
            """
            #!/bin/sh
            echo 42 > "$REPRO_OUTDIR/result.txt"
            sqlite3 "$STORE_DB" "select coalesce(invalidated_reason, 'NOT INVALIDATED') from runs where run_id = '$REPRO_RUN_ID'"

            """, executable: true)
        // What the simulation saw goes to its stdout (kept, but not compared by verify).
        repo.write("sim.yaml", "name: inv\ncommand: [./sim.sh]\ncode: [sim.sh]\nenv_passthrough: [STORE_DB]\noutputs: [result.txt]\n")
        repo.commitAll()
        let r = repro(["verify", "sim.yaml", "--backends", "local", "--perturb", "--json"], cwd: repo.path,
            env: ["STORE_DB": repo.path + "/.repro/store.sqlite"])
        XCTAssertEqual(r.code, 0, r.err)
        let store = try Store(root: repo.path + "/.repro")
        let runs = try store.recentRuns(limit: 50)
        XCTAssertGreaterThan(runs.filter { $0.invalidatedReason != nil }.count, 1)
        for run in runs {
            let seen = String(decoding: try store.readBlob(run.stdoutBlob ?? ""), as: UTF8.self)
            if run.invalidatedReason != nil {
                XCTAssertTrue(seen.hasPrefix("verify --perturb run"), "perturbed run \(run.runId) saw: \(seen)")
            } else {
                XCTAssertEqual(seen, "NOT INVALIDATED\n")
            }
        }
    }

    /// Another repro starting while verify runs must not take verify's runs for dead ones.
    func testVerifyHoldsTheKeyLockAgainstRecovery() throws {
        let repo = try TempRepo()
        repo.write("sim.sh", "#!/bin/sh\nsleep 2\necho same > \"$REPRO_OUTDIR/o.txt\"\n", executable: true)
        repo.write("sim.yaml", "name: locked\ncommand: [./sim.sh]\ncode: [sim.sh]\noutputs: [o.txt]\n")
        repo.commitAll()
        let verifyErr = repo.path + "/../verify-\(UUID().uuidString.prefix(6)).err"
        let verify = try launchRepro(["verify", "sim.yaml", "--backends", "local", "--runs", "2"], cwd: repo.path, stderrFile: verifyErr)
        // Wait until verify has recorded a running run, then start a competing repro.
        let store = try Store(root: repo.path + "/.repro")
        let deadline = Date().addingTimeInterval(20)
        while try store.runs(inStatus: .running).isEmpty && Date() < deadline { usleep(50_000) }
        XCTAssertFalse(try store.runs(inStatus: .running).isEmpty, "verify never started a run")
        let other = repro(["run", "sim.yaml", "--json"], cwd: repo.path)
        verify.waitUntilExit()
        let err = (try? String(contentsOfFile: verifyErr, encoding: .utf8)) ?? ""
        XCTAssertEqual(verify.terminationStatus, 0, "verify failed (its runs were taken for dead?): \(err)")
        XCTAssertEqual(other.code, 0, other.err)
        XCTAssertEqual(try store.recentRuns(limit: 10).filter { $0.status == .interrupted }.count, 0)
    }

    /// A corrupt blob used to stay forever: a re-run deduplicated onto it. Now the re-run's good
    /// copy replaces it and the key is served again.
    func testACorruptBlobIsRepairedByARerun() throws {
        let repo = try TempRepo.seeded()
        let first = try runSpec(repo)
        let store = try Store(root: repo.path + "/.repro")
        let sha = first.record.outputs.first { $0.name == "result.json" }?.sha256 ?? ""
        let path = store.blobPath(sha)
        chmod(path, 0o644)
        var bytes = try FileIO.readAll(path)
        bytes[bytes.count / 2] ^= 0xFF
        try FileIO.writeAtomically(bytes, to: path)
        guard case .corrupt = store.checkBlob(sha) else { return XCTFail("the blob was not damaged") }
        try FileManager.default.removeItem(atPath: first.outputsDir ?? "")
        let hit = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertEqual(hit.code, 4, "a store error has its own exit code: \(hit.err)")
        XCTAssertTrue(hit.err.contains("corrupt") && hit.err.contains("repro fsck"), hit.err)
        XCTAssertEqual(repro(["run", "sim.yaml", "--no-cache"], cwd: repo.path).code, 0)
        XCTAssertEqual(try Store(root: repo.path + "/.repro").checkBlob(sha), .intact)
        let again = repro(["run", "sim.yaml"], cwd: repo.path)
        XCTAssertEqual(again.code, 0, again.err)
    }

    /// Temp files next to a destination are exclusive and never followed through a symlink.
    func testMaterializingIgnoresAPlantedSymlink() throws {
        let repo = try TempRepo.seeded()
        let first = try runSpec(repo)
        let store = try Store(root: repo.path + "/.repro")
        let sha = first.record.outputs.first { $0.name == "result.json" }?.sha256 ?? ""
        let dir = repo.path + "/shared"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let victim = repo.path + "/victim.txt"
        FileManager.default.createFile(atPath: victim, contents: Data("precious\n".utf8))
        // The old temp name was predictable: NAME.tmp-<pid>.
        symlink(victim, dir + "/result.json.tmp-\(getpid())")
        symlink(victim, dir + "/result.json")
        try store.materializeBlob(sha, to: dir + "/result.json")
        XCTAssertEqual(try String(contentsOfFile: victim, encoding: .utf8), "precious\n")
        var st = stat()
        XCTAssertEqual(lstat(dir + "/result.json", &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG, "the symlink was replaced by a file, not written through")
    }

    /// An output the simulation hard-linked to an input is copied into results/, never moved
    /// with its link: editing the result must not edit the input.
    func testAHardLinkedOutputIsCopied() throws {
        let repo = try TempRepo()
        repo.write("data/input.dat", "original\n")
        repo.write("sim.sh", "#!/bin/sh\nln data/input.dat \"$REPRO_OUTDIR/copy.dat\"\n", executable: true)
        repo.write("sim.yaml", "name: hl\ncommand: [./sim.sh]\ncode: [sim.sh]\ninputs: [data/input.dat]\noutputs: [copy.dat]\n")
        repo.commitAll()
        let out = try runSpec(repo)
        let result = out.outputPaths["copy.dat"] ?? ""
        var st = stat()
        XCTAssertEqual(stat(result, &st), 0)
        XCTAssertEqual(st.st_nlink, 1, "the result is still linked to the input")
        FileManager.default.createFile(atPath: result, contents: Data("edited\n".utf8))
        XCTAssertEqual(repo.read("data/input.dat"), "original\n")
    }

    /// A helper that hangs (squeue against a dead slurmctld) is killed at its timeout, with
    /// its whole process group, and the error names it.
    func testHelperCommandsTimeOut() throws {
        let pidFile = slowPidFile()
        defer { unlink(pidFile) }
        XCTAssertThrowsError(
            try CommandOutput.run(["sh", "-c", "sleep 30 & echo $! > \(pidFile); sleep 30"], environment: ["PATH": "/usr/bin:/bin"], timeout: 1)
        ) { error in
            XCTAssertTrue("\(error)".contains("sh did not answer within 1s"), "\(error)")
        }
        // Its whole process group went with it, the background sleep too.
        XCTAssertTrue(pidFileProcessIsGone(pidFile), "the helper's background child survived")
        let ok = try CommandOutput.run(["sh", "-c", "echo out; echo err >&2; exit 3"], environment: ["PATH": "/usr/bin:/bin"])
        XCTAssertEqual(ok.status, 3)
        XCTAssertEqual(ok.stdout, "out\n")
        XCTAssertEqual(ok.stderr, "err\n")
    }

    /// Rows are decoded by column name; a damaged row is an error naming it, never a silent
    /// default (corrupt JSON used to read as null, an unknown status as `failed`).
    func testADamagedRowIsAnErrorNotADefault() throws {
        let repo = try TempRepo.seeded()
        let run = try runSpec(repo)
        let db = repo.path + "/.repro/store.sqlite"
        XCTAssertEqual(sh(["sqlite3", db, "UPDATE runs SET config_json = '{broken' WHERE run_id = '\(run.record.runId)'"], cwd: "/").code, 0)
        let r = repro(["show", run.record.runId], cwd: repo.path)
        XCTAssertEqual(r.code, 4, r.err)
        XCTAssertTrue(r.err.contains("config_json of run \(run.record.runId) is not valid JSON"), r.err)
        XCTAssertEqual(sh(["sqlite3", db, "PRAGMA ignore_check_constraints = ON; UPDATE runs SET config_json = '{}', status = 'exploded' WHERE run_id = '\(run.record.runId)'"], cwd: "/").code, 0)
        let s = repro(["log"], cwd: repo.path)
        XCTAssertEqual(s.code, 4, s.err)
        XCTAssertTrue(s.err.contains("unknown status 'exploded'"), s.err)
    }
}
