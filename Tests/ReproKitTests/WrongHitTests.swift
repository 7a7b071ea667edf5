import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport
@testable import ReproStore

/// Ways a changed code or input once gave a hit with the old result: each must now miss, or
/// be refused as dirty. Real git repositories, real stores.
final class WrongHitTests: XCTestCase {
    private func isDirtyRefusal(_ error: Error, naming path: String) -> Bool {
        guard let e = error as? ReproError else { return false }
        return e.exitCode == 2 && e.description.contains(path) && e.description.contains("--allow-dirty")
    }

    func testIgnoredCodePathIsDirtyAndItsContentJoinsTheKey() throws {
        let repo = try TempRepo()
        repo.write(".gitignore", "model.py\n")
        repo.write("run.sh", "#!/bin/sh\ncp model.py \"$REPRO_OUTDIR/out.txt\"\n", executable: true)
        repo.write("sim.yaml", "name: ign\ncommand: [./run.sh]\ncode: [run.sh, model.py]\noutputs: [out.txt]\n")
        repo.commitAll()
        repo.write("model.py", "rate = 1\n")
        XCTAssertThrowsError(try runSpec(repo)) { XCTAssertTrue(self.isDirtyRefusal($0, naming: "model.py"), "\($0)") }
        let a = try runSpec(repo, allowDirty: true)
        XCTAssertEqual(a.cache, .miss)
        XCTAssertEqual(a.record.dirtyFiles, ["model.py"])
        let store = try Store(root: repo.path + "/.repro")
        XCTAssertTrue(String(decoding: try store.readBlob(a.record.patchBlob ?? ""), as: UTF8.self).contains("+rate = 1"))
        XCTAssertEqual(try runSpec(repo, allowDirty: true).cache, .hit)
        repo.write("model.py", "rate = 2\n")
        let b = try runSpec(repo, allowDirty: true)
        XCTAssertEqual(b.cache, .miss, "an edit to an ignored code file must change the key")
        XCTAssertNotEqual(a.record.key, b.record.key)
        XCTAssertEqual(try String(contentsOfFile: b.outputPaths["out.txt"] ?? "", encoding: .utf8), "rate = 2\n")
    }

    func testIgnoredFileUnderACodeFolderIsDirtyButPythonBytecodeIsNot() throws {
        let repo = try TempRepo()
        repo.write(".gitignore", "*.local\n__pycache__/\n")
        repo.write("sim/run.sh", "#!/bin/sh\necho ok > \"$REPRO_OUTDIR/o\"\n", executable: true)
        repo.write("sim.yaml", "name: ign2\ncommand: [sim/run.sh]\ncode: [sim]\n")
        repo.commitAll()
        repo.write("sim/__pycache__/m.cpython-311.pyc", "bytecode")
        XCTAssertEqual(try runSpec(repo).record.status, .succeeded)
        repo.write("sim/params.local", "k = 3\n")
        XCTAssertThrowsError(try runSpec(repo)) { XCTAssertTrue(self.isDirtyRefusal($0, naming: "sim/params.local"), "\($0)") }
    }

    func testEditsInsideADirtySubmoduleGiveDifferentKeys() throws {
        let lib = try TempRepo()
        lib.write("lib.sh", "k=1\n")
        lib.commitAll("lib")
        let repo = try TempRepo()
        repo.write("run.sh", "#!/bin/sh\ncat ext/lib.sh > \"$REPRO_OUTDIR/o\"\n", executable: true)
        repo.write("sim.yaml", "name: sub\ncommand: [./run.sh]\ncode: [run.sh, ext]\noutputs: [o]\n")
        repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", lib.path, "ext")
        repo.commitAll("with submodule")
        let clean = try runSpec(repo)
        XCTAssertEqual(clean.record.status, .succeeded)
        repo.write("ext/lib.sh", "k=2\n")
        XCTAssertThrowsError(try runSpec(repo)) { XCTAssertTrue(self.isDirtyRefusal($0, naming: "ext"), "\($0)") }
        let two = try runSpec(repo, allowDirty: true)
        repo.write("ext/lib.sh", "k=3\n")
        let three = try runSpec(repo, allowDirty: true)
        XCTAssertEqual(three.cache, .miss, "a different edit inside the submodule must be a different key")
        XCTAssertNotEqual(two.record.key, three.record.key)
        XCTAssertEqual(try String(contentsOfFile: three.outputPaths["o"] ?? "", encoding: .utf8), "k=3\n")
        let store = try Store(root: repo.path + "/.repro")
        let patch = String(decoding: try store.readBlob(three.record.patchBlob ?? ""), as: UTF8.self)
        XCTAssertTrue(patch.contains("+k=3"), patch)
    }

    func testACommittedSymlinkCodePathFollowsItsTarget() throws {
        let repo = try TempRepo()
        repo.write("impl/model.sh", "#!/bin/sh\necho v1 > \"$REPRO_OUTDIR/o\"\n", executable: true)
        symlink("impl/model.sh", repo.path + "/model.sh")
        repo.write("sim.yaml", "name: link\ncommand: [./model.sh]\ncode: [model.sh]\noutputs: [o]\n")
        repo.commitAll()
        let v1 = try runSpec(repo)
        XCTAssertEqual(v1.record.code.paths.first?.id,
            repo.git("rev-parse", "HEAD:impl/model.sh").trimmingCharacters(in: .whitespacesAndNewlines))
        repo.write("impl/model.sh", "#!/bin/sh\necho v2 > \"$REPRO_OUTDIR/o\"\n", executable: true)
        repo.commitAll("change the target only")
        let v2 = try runSpec(repo)
        XCTAssertEqual(v2.cache, .miss)
        XCTAssertEqual(try String(contentsOfFile: v2.outputPaths["o"] ?? "", encoding: .utf8), "v2\n")
    }

    func testASymlinkInsideACodeFolderLeadingOutOfTheRepositoryIsHashedByContent() throws {
        let outside = NSTemporaryDirectory() + "repro-outside-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        FileManager.default.createFile(atPath: outside + "/helper.sh", contents: Data("echo h1\n".utf8))
        let repo = try TempRepo()
        repo.write("sim/run.sh", "#!/bin/sh\n. ./sim/helper.sh > \"$REPRO_OUTDIR/o\"\n", executable: true)
        symlink(outside + "/helper.sh", repo.path + "/sim/helper.sh")
        repo.write("sim.yaml", "name: out\ncommand: [sim/run.sh]\ncode: [sim]\noutputs: [o]\n")
        repo.commitAll()
        let a = try runSpec(repo)
        XCTAssertEqual(a.record.code.links.first?.path, "sim/helper.sh")
        XCTAssertEqual(try runSpec(repo).cache, .hit)
        FileManager.default.createFile(atPath: outside + "/helper.sh", contents: Data("echo h2\n".utf8))
        let b = try runSpec(repo)
        XCTAssertEqual(b.cache, .miss)
        XCTAssertEqual(try String(contentsOfFile: b.outputPaths["o"] ?? "", encoding: .utf8), "h2\n")
    }

    func testInputFolderFollowsSymlinksAndRefusesAFIFO() throws {
        let outside = NSTemporaryDirectory() + "repro-in-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: outside) }
        FileManager.default.createFile(atPath: outside + "/big.csv", contents: Data("1\n".utf8))
        let repo = try TempRepo()
        repo.write(".gitignore", "data/\n")
        repo.write("run.sh", "#!/bin/sh\ncat data/*.csv > \"$REPRO_OUTDIR/o\"\n", executable: true)
        repo.write("data/local.csv", "0\n")
        symlink(outside + "/big.csv", repo.path + "/data/big.csv")
        repo.write("sim.yaml", "name: inp\ncommand: [./run.sh]\ncode: [run.sh]\ninputs: [data]\noutputs: [o]\n")
        repo.commitAll()
        let a = try runSpec(repo)
        XCTAssertEqual(a.record.inputs.map(\.path), ["data/big.csv", "data/local.csv"])
        FileManager.default.createFile(atPath: outside + "/big.csv", contents: Data("2\n".utf8))
        XCTAssertEqual(try runSpec(repo).cache, .miss, "the linked input changed")
        // A FIFO would block a hash forever: refused at once, as a config error.
        XCTAssertEqual(mkfifo(repo.path + "/data/pipe", 0o644), 0)
        // Through the CLI under timeout(1): a hang would show as its exit 124, not a stuck test.
        let fifo = sh(["timeout", "60", TestPaths.repro, "run", "sim.yaml"], cwd: repo.path)
        XCTAssertEqual(fifo.code, 2, fifo.err)
        XCTAssertTrue(fifo.err.contains("data/pipe") && fifo.err.contains("FIFO"), fifo.err)
        repo.write("sim2.yaml", "name: inp2\ncommand: [./run.sh]\ncode: [run.sh]\ninputs: [data/pipe]\n")
        XCTAssertThrowsError(try runSpec(repo, spec: "sim2.yaml")) { XCTAssertTrue("\($0)".contains("FIFO"), "\($0)") }
    }
}
