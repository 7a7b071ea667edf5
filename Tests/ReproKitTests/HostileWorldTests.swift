import Foundation
import XCTest

@testable import ReproKit

/// A simulation, a teammate's bucket or a node user must not reach beyond their lane: each
/// test reproduces one way they did, with the real binary, real stores and real processes.
final class HostileWorldTests: XCTestCase {
    /// Files and folders outside the repository that a simulation links into its output folder.
    private func plantOutside() throws -> (dir: String, file: String, check: () -> Void) {
        let base = NSTemporaryDirectory() + "outside-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: base + "/data/sub", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: base + "/data/a.csv", contents: Data("precious\n".utf8))
        FileManager.default.createFile(atPath: base + "/data/sub/b.csv", contents: Data("also precious\n".utf8))
        FileManager.default.createFile(atPath: base + "/lone.txt", contents: Data("lone\n".utf8))
        let check = {
            XCTAssertEqual(try? String(contentsOfFile: base + "/data/a.csv", encoding: .utf8), "precious\n")
            XCTAssertEqual(try? String(contentsOfFile: base + "/data/sub/b.csv", encoding: .utf8), "also precious\n")
            XCTAssertEqual(try? String(contentsOfFile: base + "/lone.txt", encoding: .utf8), "lone\n")
        }
        return (base + "/data", base + "/lone.txt", check)
    }

    /// `ln -s /some/dir "$REPRO_OUTDIR/inputs"` used to make repro empty /some/dir when it
    /// cleared the run slot. Links at the top, deeper down, and to files: only links go.
    func testCleaningAnOutputFolderNeverFollowsLinks() throws {
        let outside = try plantOutside()
        let repo = try TempRepo()
        repo.write(
            "sim.sh",
            """
            #!/bin/sh
            ln -s "$OUT_DIR" "$REPRO_OUTDIR/inputs"
            ln -s "$OUT_FILE" "$REPRO_OUTDIR/lone.txt"
            mkdir -p "$REPRO_OUTDIR/deep/er"
            ln -s "$OUT_DIR" "$REPRO_OUTDIR/deep/er/data"
            ln -s "$OUT_DIR/sub" "$REPRO_OUTDIR/deep/sub"
            echo "$1" > "$REPRO_OUTDIR/result.txt"

            """, executable: true)
        repo.write(
            "sim.yaml",
            "name: links\ncommand: [./sim.sh, \"{params.n}\"]\ncode: [sim.sh]\nparams: {n: 1}\noutputs: [result.txt]\nenv_passthrough: [OUT_DIR, OUT_FILE]\n")
        repo.write("sweep.yaml", "base: sim.yaml\ngrid: {params.n: [2, 3, 4, 5]}\n")
        repo.commitAll()
        let env = ["OUT_DIR": outside.dir, "OUT_FILE": outside.file]
        let first = repro(["run", "sim.yaml"], cwd: repo.path, env: env)
        XCTAssertEqual(first.code, 0, first.err)
        outside.check()
        // The next run takes the same slot and empties what is left there.
        XCTAssertEqual(repro(["run", "sim.yaml", "--no-cache"], cwd: repo.path, env: env).code, 0)
        outside.check()
        let sweep = repro(["sweep", "sweep.yaml", "--jobs", "2"], cwd: repo.path, env: env)
        XCTAssertEqual(sweep.code, 0, sweep.err)
        outside.check()
        // The library's own removal: a link given as the tree itself, and a tree holding links.
        let tree = NSTemporaryDirectory() + "tree-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: tree + "/x", withIntermediateDirectories: true)
        symlink(outside.dir, tree + "/x/link")
        symlink(outside.dir, tree + ".link")
        FileIO.removeTree(tree + ".link")
        FileIO.emptyTree(tree + ".link")
        FileIO.removeTree(tree)
        outside.check()
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree))
        XCTAssertFalse(FileManager.default.fileExists(atPath: tree + ".link"))
        // A run killed mid-way leaves its links in the slot; the next holder cleans up.
        repo.write("slow.sh", "#!/bin/sh\nln -s \"$OUT_DIR\" \"$REPRO_OUTDIR/inputs\"\necho $$ > \"$PID_FILE\"\nexec sleep 30\n", executable: true)
        let pidFile = slowPidFile()
        defer { unlink(pidFile) }
        repo.write("slow.yaml", "name: slow\ncommand: [./slow.sh]\ncode: [slow.sh]\nenv: {OUT_DIR: \(outside.dir), PID_FILE: \(pidFile)}\n")
        repo.commitAll()
        let slow = try launchRepro(["run", "slow.yaml"], cwd: repo.path)
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: pidFile) && Date() < deadline { usleep(50_000) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: pidFile), "the slow simulation never started")
        kill(slow.processIdentifier, SIGKILL)
        // The simulation too (Foundation's wait otherwise lasts until the orphan ends).
        if let pid = Int32((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") {
            kill(pid, SIGKILL)
        }
        slow.waitUntilExit()
        XCTAssertEqual(repro(["run", "sim.yaml", "--no-cache"], cwd: repo.path, env: env).code, 0)
        XCTAssertEqual(repro(["cache", "gc"], cwd: repo.path, env: env).code, 0)
        outside.check()
    }

    /// Sizes in a tar header come from a bucket: -1, 2^63-1 and 8 GiB used to trap (SIGILL).
    func testForgedTarSizesAreRefusedNamingTheEntry() throws {
        let dir = NSTemporaryDirectory() + "tar-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: dir + "/x", withIntermediateDirectories: true)
        defer { FileIO.removeTree(dir) }
        for size in ["-1", "9223372036854775807", "8589934592", "18446744073709551615", "12abc"] {
            let w = try Tar.Writer(path: dir + "/a.tar")
            // A pax header that sets the size of the entry after it.
            let pax = Array(Tar.paxRecord("size", size).utf8)
            try FileIO.writeAll(w.fd, Tar.block(name: "PaxHeaders/x", type: "x", mode: 0o644, size: Int64(pax.count), link: ""), path: dir)
            try FileIO.writeAll(w.fd, pax + [UInt8](repeating: 0, count: (512 - pax.count % 512) % 512), path: dir)
            try FileIO.writeAll(w.fd, Tar.block(name: "result.json", type: "0", mode: 0o644, size: 5, link: ""), path: dir)
            try FileIO.writeAll(w.fd, Array("hello".utf8) + [UInt8](repeating: 0, count: 507), path: dir)
            try w.finish()
            XCTAssertThrowsError(try Tar.extract(dir + "/a.tar", into: dir + "/x"), size) { e in
                XCTAssertTrue("\(e)".contains("result.json") && "\(e)".contains("claims a size"), "\(e)")
            }
        }
        // The ustar field too (octal, so a minus or a size past the archive's end).
        for field in ["-0000001", "77777777777"] {
            var block = Tar.block(name: "out.bin", type: "0", mode: 0o644, size: 1, link: "")
            for (i, c) in field.utf8.enumerated() { block[124 + i] = c }
            for i in 148..<156 { block[i] = UInt8(ascii: " ") }
            let sum = String(block.reduce(0) { $0 + Int($1) }, radix: 8)
            for (i, c) in (String(repeating: "0", count: 6 - sum.count) + sum).utf8.enumerated() { block[148 + i] = c }
            block[154] = 0
            try FileIO.writeNew(block + [UInt8](repeating: 0, count: 1536), to: dir + "/b.tar")
            XCTAssertThrowsError(try Tar.extract(dir + "/b.tar", into: dir + "/x"), field) { e in
                XCTAssertTrue("\(e)".contains("out.bin"), "\(e)")
            }
        }
    }

    /// Replays the tar fuzzing corpus (scripts/fuzz.sh tar adds to it): no archive may crash
    /// the reader or write outside the folder it extracts into.
    func testTarFuzzCorpusReplays() throws {
        let corpus = TestPaths.root + "/Tests/ReproKitTests/Corpus/tar"
        let names = try FileManager.default.contentsOfDirectory(atPath: corpus).sorted()
        XCTAssertGreaterThanOrEqual(names.count, 25, "the corpus is missing")
        let base = NSTemporaryDirectory() + "tar-replay-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { FileIO.removeTree(base) }
        var extracted = 0
        for name in names {
            let root = base + "/root"
            FileIO.removeTree(root)
            mkdir(root, 0o755)
            if (try? Tar.extract(corpus + "/" + name, into: root, fileLimit: 1000)) != nil { extracted += 1 }
            XCTAssertEqual(FileIO.directoryNames(base), ["root"], name)
        }
        XCTAssertGreaterThan(extracted, 3)
    }
}
