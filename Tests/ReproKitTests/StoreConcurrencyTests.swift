import Foundation
import XCTest

@testable import ReproKit
@testable import ReproStore

/// The store under concurrent use and after crashes: fsck beside finishing runs and gc, a hook
/// meeting a busy store, temp files of killed writes, records that must not live only in the WAL.
final class StoreConcurrencyTests: XCTestCase {
    func testFsckBesideFinishingRunsAndGCReportsNoFalseProblems() throws {
        let repo = try TempRepo.seeded(
            spec: TempRepo.defaultSpec.replacingOccurrences(of: "[COUNTER_FILE]", with: "[COUNTER_FILE, SIM_SLEEP]"))
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)  // the store exists
        var procs: [Process] = []
        for i in 0..<8 {
            procs.append(try launchRepro(["run", "sim.yaml", "--set", "params.n=\(100 + i)"], cwd: repo.path, env: ["SIM_SLEEP": "0.\(i)"]))
        }
        let gc = try launchRepro(["cache", "gc", "--stale"], cwd: repo.path)
        var failures: [String] = []
        var scans = 0
        while procs.contains(where: \.isRunning) || scans < 3 {
            let r = repro(["fsck", "--json"], cwd: repo.path)
            scans += 1
            if r.code != 0 { failures.append(r.out + r.err) }
        }
        for p in procs + [gc] { p.waitUntilExit() }
        XCTAssertEqual(failures, [], "fsck reported problems that were not there (\(failures.count) of \(scans) scans)")
        XCTAssertEqual(repro(["fsck"], cwd: repo.path).code, 0)
    }

    /// A hook must not wait 30 s on a busy store: it records that a refresh is owed, and the
    /// next repro command does it.
    func testAHookMeetingABusyStoreOwesTheRefreshInsteadOfBlockingGit() throws {
        let repo = try TempRepo()
        repo.addFixture("seeded.sh", as: "a.sh")
        repo.write("a.yaml", "name: a\ncommand: [./a.sh, '1']\ncode: [a.sh]\nseed: 1\n")
        repo.commitAll("initial")
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = (TestPaths.repro as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env.removeValue(forKey: "REPRO_STORE")
        XCTAssertEqual(repro(["hooks", "install"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "a.yaml"], cwd: repo.path).code, 0)
        // Another connection holds the write lock for 8 s.
        let db = repo.path + "/.repro/store.sqlite"
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c",
            "import sqlite3,time,sys; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN IMMEDIATE'); "
                + "print('locked', flush=True); time.sleep(8)", db]
        let ready = Pipe()
        holder.standardOutput = ready
        try holder.run()
        _ = ready.fileHandleForReading.readData(ofLength: 6)
        repo.write("a.sh", (repo.read("a.sh") ?? "") + "# faster\n", executable: true)
        let commit = sh(["git", "commit", "-qam", "tweak a"], cwd: repo.path, env: env)
        XCTAssertEqual(commit.code, 0, commit.err)
        // The commit was done while the other connection still held the lock: the hook did not wait for it.
        XCTAssertTrue(holder.isRunning, "the hook held up git commit until the store was free")
        XCTAssertTrue(commit.err.contains("refreshed by the next repro command"), commit.err)
        XCTAssertTrue(FileManager.default.fileExists(atPath: repo.path + "/.repro/refresh-owed"))
        holder.waitUntilExit()
        let status = repro(["cache", "status", "--json"], cwd: repo.path)
        XCTAssertEqual(status.code, 0, status.err)
        XCTAssertEqual(parseJSON(status.out)["stale"], .int(1), status.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo.path + "/.repro/refresh-owed"))
    }

    func testGCRemovesTempFilesOfKilledWritesOnly() throws {
        let repo = try TempRepo.seeded()
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        let tmp = repo.path + "/.repro/tmp"
        // pid 4194303 is above any pid this machine hands out (pid_max); ours is alive.
        let dead = tmp + "/blob-4194303-1234"
        let live = tmp + "/blob-\(getpid())-5678"
        FileManager.default.createFile(atPath: dead, contents: Data(repeating: 7, count: 4096))
        FileManager.default.createFile(atPath: live, contents: Data(repeating: 7, count: 10))
        let r = repro(["cache", "gc", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(parseJSON(r.out)["temp_files_removed"], .int(1))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead))
        XCTAssertTrue(FileManager.default.fileExists(atPath: live))
    }

    /// Records must reach the database file at sensible points, and fsck must notice blobs
    /// whose records were lost.
    func testRecordsSurviveALostWALAfterSweepsAndFsckAndFsckSeesLostRecords() throws {
        let repo = try TempRepo.seeded()
        let db = repo.path + "/.repro/store.sqlite"
        func dropWAL() {
            unlink(db + "-wal")
            unlink(db + "-shm")
        }
        func runCount() -> Int { Int(sh(["sqlite3", db, "select count(*) from runs"], cwd: "/").out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1 }
        XCTAssertEqual(repro(["run", "sim.yaml"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=2"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["fsck"], cwd: repo.path).code, 0)
        dropWAL()
        XCTAssertEqual(runCount(), 2, "fsck checkpoints: the records are in the database file")

        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [11, 12, 13]}\n")
        XCTAssertEqual(repro(["sweep", "sweep.yaml"], cwd: repo.path).code, 0)
        dropWAL()
        XCTAssertEqual(runCount(), 5, "a finished sweep checkpoints")

        // A lone run's record may still be only in the WAL; losing it leaves blobs no record
        // names, and fsck says so.
        XCTAssertEqual(repro(["run", "sim.yaml", "--set", "params.n=77"], cwd: repo.path).code, 0)
        dropWAL()
        let r = repro(["fsck", "--json"], cwd: repo.path)
        // Dangling blobs are information (exit 0), as git's are; damage exits 4.
        XCTAssertEqual(r.code, 0, r.out)
        XCTAssertEqual(parseJSON(r.out)["problems"], [], r.out)
        let kinds = Set((parseJSON(r.out)["dangling"]?.arrayValue ?? []).compactMap { $0["kind"]?.stringValue })
        XCTAssertEqual(kinds, ["unreferenced-blob"], r.out)
        let text = repro(["fsck"], cwd: repo.path)
        XCTAssertTrue(text.out.contains("dangling: "), text.out)
        XCTAssertTrue(text.out.contains("store is healthy"), text.out)
        // A corrupt blob is damage.
        let id = try XCTUnwrap(parseJSON(repro(["log", "--json"], cwd: repo.path).out).arrayValue?.last?["run_id"]?.stringValue)
        let first = parseJSON(repro(["show", id, "--json"], cwd: repo.path).out)
        let sha = try XCTUnwrap(first["outputs"]?.arrayValue?.first?["sha256"]?.stringValue, "\(first)")
        let some = try Store(root: repo.path + "/.repro").blobPath(sha)
        chmod(some, 0o644)
        XCTAssertTrue(FileManager.default.fileExists(atPath: some), some)
        // One byte appended after the compressed data is damage too.
        chmod(some, 0o644)
        let fh = try XCTUnwrap(FileHandle(forWritingAtPath: some))
        fh.seekToEndOfFile()
        fh.write(Data("x".utf8))
        try fh.close()
        let appended = repro(["fsck"], cwd: repo.path)
        XCTAssertEqual(appended.code, 4, appended.out + appended.err)
        XCTAssertTrue(appended.out.contains("follow the end of the compressed data"), appended.out)
        FileManager.default.createFile(atPath: some, contents: Data("not what was stored".utf8))
        let damaged = repro(["fsck"], cwd: repo.path)
        XCTAssertEqual(damaged.code, 4, damaged.out + damaged.err)
        XCTAssertTrue(damaged.out.contains("corrupt-blob"), damaged.out)
    }
}
