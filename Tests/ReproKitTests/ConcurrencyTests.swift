import Foundation
import XCTest

@testable import ReproKit
@testable import ReproStore

/// Several processes on one store, and processes that die at the worst moment.
final class ConcurrencyTests: XCTestCase {
    func testEightConcurrentRunsFourKeysEachComputedOnce() throws {
        // SIM_SLEEP keeps each computation running long enough that the second process of a
        // key must wait on the first; passthrough values are recorded but not in the key.
        let repo = try TempRepo.seeded(
            spec: TempRepo.defaultSpec.replacingOccurrences(of: "[COUNTER_FILE]", with: "[COUNTER_FILE, SIM_SLEEP]"))
        let counter = repo.path + "/.git/counter"
        var procs: [(Process, String)] = []
        for key in 0..<4 {
            for i in 0..<2 {
                let log = repo.path + "/.git/stderr-\(key)-\(i)"
                procs.append(
                    (try launchRepro(
                        ["run", "sim.yaml", "--set", "params.n=\(key)"], cwd: repo.path,
                        env: ["COUNTER_FILE": counter, "SIM_SLEEP": "0.3"], stderrFile: log), log))
            }
        }
        for (p, log) in procs {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        let executions = (try String(contentsOfFile: counter, encoding: .utf8)).split(separator: "\n")
        XCTAssertEqual(executions.count, 4, "each key computed exactly once")
        let store = try Store(root: repo.path + "/.repro")
        let runs = try store.recentRuns(limit: 100)
        XCTAssertEqual(runs.count, 4)
        XCTAssertEqual(Set(runs.map(\.key)).count, 4)
        XCTAssertEqual(runs.map(\.hitCount).reduce(0, +), 4, "the second process of each key was a hit")
        XCTAssertEqual(try store.integrityCheck(), ["ok"])
    }

    /// Local runs reuse task folders (`tmp/run-slot-N`): runs at the same time each hold their
    /// own, and what a killed run left in one never becomes another run's output.
    func testConcurrentRunsHoldTheirOwnTaskFoldersAndLeftoversDoNotLeak() throws {
        let repo = try TempRepo.seeded(
            spec: TempRepo.defaultSpec.replacingOccurrences(of: "[COUNTER_FILE]", with: "[COUNTER_FILE, SIM_SLEEP]"))
        let slot = repo.path + "/.repro/tmp/run-slot-1"
        try FileManager.default.createDirectory(atPath: slot + "/out/traj", withIntermediateDirectories: true)
        repo.write(".repro/tmp/run-slot-1/out/traj/9.csv", "planted\n")
        repo.write(".repro/tmp/run-slot-1/out/result.json", "{\"planted\": true}\n")
        var procs: [(Process, String)] = []
        for n in 1...3 {
            let log = repo.path + "/.git/stderr-\(n)"
            procs.append(
                (try launchRepro(["run", "sim.yaml", "--set", "params.n=\(n)"], cwd: repo.path, env: ["SIM_SLEEP": "0.3"], stderrFile: log), log))
        }
        for (p, log) in procs {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        for n in 1...3 {
            let r = parseJSON(repro(["run", "sim.yaml", "--set", "params.n=\(n)", "--json"], cwd: repo.path).out)
            XCTAssertEqual(r["cache"], "hit")
            let names = (r["outputs"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }.sorted()
            XCTAssertEqual(names, ["result.json", "traj/0.csv", "traj/1.csv", "traj/2.csv"])
            let dir = r["outputs_dir"]?.stringValue ?? ""
            let result = (try? String(contentsOfFile: dir + "/result.json", encoding: .utf8)) ?? ""
            XCTAssertTrue(result.contains("\"n\": \(n)}"), result)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: slot + "/out/traj/9.csv"), "emptied by the run that took the slot")
    }

    func testKill9MidRunLeavesAHealthyStoreAndAnInterruptedRun() throws {
        let repo = try TempRepo()
        repo.addFixture("slow.sh", as: "slow.sh")
        repo.addFixture("seeded.sh", as: "seeded.sh")
        repo.write("slow.yaml", "name: slow\ncommand: [./slow.sh, '2']\ncode: [slow.sh]\n")
        repo.write("quick.yaml", "name: quick\ncommand: ./seeded.sh\ncode: [seeded.sh]\nseed: 5\n")
        repo.commitAll()
        XCTAssertEqual(repro(["run", "quick.yaml"], cwd: repo.path).code, 0)

        let p = try launchRepro(["run", "slow.yaml"], cwd: repo.path)
        let store = try Store(root: repo.path + "/.repro")
        let deadline = Date().addingTimeInterval(10)
        while try store.runs(inStatus: .running).isEmpty && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(try store.runs(inStatus: .running).count, 1)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()

        // The store opens, passes the integrity check, keeps the finished run.
        let check = sh(["sqlite3", repo.path + "/.repro/store.sqlite", "PRAGMA integrity_check"], cwd: repo.path)
        XCTAssertEqual(check.out, "ok\n")
        XCTAssertEqual(try store.runs(inStatus: .succeeded).map(\.name), ["quick"])

        // The next start finds the dead run and marks it interrupted; the spec runs again.
        let again = repro(["run", "slow.yaml", "--json"], cwd: repo.path)
        XCTAssertEqual(again.code, 0, again.err)
        XCTAssertEqual(parseJSON(again.out)["cache"], "miss")
        let interrupted = try store.runs(inStatus: .interrupted)
        XCTAssertEqual(interrupted.count, 1)
        XCTAssertTrue(interrupted.first?.message?.contains("ended before the run finished") ?? false)
        XCTAssertEqual(try store.runs(inStatus: .running).count, 0)
    }

    func testCtrlCKillsTheSimulationAndRecordsInterrupted() throws {
        let repo = try TempRepo()
        repo.addFixture("slow.sh", as: "slow.sh")
        let pidFile = slowPidFile()
        defer { unlink(pidFile) }
        repo.write("sim.yaml", "name: slow\ncommand: [./slow.sh, '40']\ncode: [slow.sh]\nenv: {SLOW_PID_FILE: \(pidFile)}\n")
        repo.commitAll()
        let p = try launchRepro(["run", "sim.yaml"], cwd: repo.path)
        let store = try Store(root: repo.path + "/.repro")
        // The simulation is running once its sleep has written its pid.
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: pidFile) && Date() < deadline { usleep(20_000) }
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 130)
        let runs = try store.runs(inStatus: .interrupted)
        XCTAssertEqual(runs.count, 1)
        XCTAssertTrue(pidFileProcessIsGone(pidFile), "the simulation was killed")
    }
}
