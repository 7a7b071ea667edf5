import Foundation
import XCTest

@testable import ReproKit
@testable import ReproSupport

/// Git hooks in real repositories: staleness after commits, checkouts, amends and rebases;
/// chaining of users' hooks; core.hooksPath; uninstall; a missing repro.
final class HookTests: XCTestCase {
    /// PATH with the built repro first, as a user who installed it would have.
    let envWithRepro: [String: String] = {
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = (TestPaths.repro as NSString).deletingLastPathComponent + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        env.removeValue(forKey: "REPRO_STORE")
        return env
    }()

    /// A repo with two simulations that depend on different code: a.sh and b.sh.
    func twoSpecRepo() throws -> TempRepo {
        let repo = try TempRepo()
        repo.addFixture("seeded.sh", as: "a.sh")
        repo.addFixture("seeded.sh", as: "b.sh")
        repo.write("a.yaml", "name: a\ncommand: [./a.sh, '1']\ncode: [a.sh]\nseed: 1\n")
        repo.write("b.yaml", "name: b\ncommand: [./b.sh, '2']\ncode: [b.sh]\nseed: 2\n")
        repo.write("notes.txt", "notes\n")
        repo.commitAll("initial")
        return repo
    }

    @discardableResult
    func git(_ repo: TempRepo, _ args: [String], env: [String: String]? = nil, stdin: String? = nil) -> (code: Int32, out: String, err: String) {
        let r = sh(["git"] + args, cwd: repo.path, env: env ?? envWithRepro, stdin: stdin)
        XCTAssertEqual(r.code, 0, "git \(args) failed: \(r.err)")
        return r
    }

    func status(_ repo: TempRepo) -> JSONValue {
        let r = repro(["cache", "status", "--json"], cwd: repo.path)
        XCTAssertEqual(r.code, 0, r.err)
        return parseJSON(r.out)
    }

    func testCommitMarksExactlyTheDependentEntriesStaleAndCheckoutRevivesThem() throws {
        let repo = try twoSpecRepo()
        XCTAssertEqual(repro(["hooks", "install"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "a.yaml"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "b.yaml"], cwd: repo.path).code, 0)
        let first = repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)

        // Only notes.txt: nothing changes, the hook stays quiet.
        repo.write("notes.txt", "more\n")
        let quiet = git(repo, ["commit", "-qam", "notes"])
        XCTAssertFalse(quiet.err.contains("stale"), quiet.err)
        XCTAssertEqual(status(repo)["current"], .int(2))

        // a.sh changes: exactly a's entry goes stale, and the hook says so in one line.
        repo.write("a.sh", (repo.read("a.sh") ?? "") + "# faster\n", executable: true)
        let commit = git(repo, ["commit", "-qam", "tweak a"])
        XCTAssertTrue(commit.err.contains("repro: 1 cache entry now stale (a.sh changed"), commit.err)
        let st = status(repo)
        XCTAssertEqual(st["current"], .int(1))
        XCTAssertEqual(st["stale"], .int(1))
        XCTAssertEqual(st["reasons"]?.arrayValue?.first?["path"], "a.sh")
        XCTAssertNotNil(st["bytes"]?.intValue)
        XCTAssertEqual(st["expired"], .int(0))
        XCTAssertEqual(st["failed"], .int(0))

        // Back to the first commit: a's entry is current again (content addressing).
        let back = git(repo, ["checkout", "-q", first])
        XCTAssertTrue(back.err.contains("1 current again"), back.err)
        XCTAssertEqual(status(repo)["current"], .int(2))
        XCTAssertEqual(parseJSON(repro(["run", "a.yaml", "--json"], cwd: repo.path).out)["cache"], "hit")

        // A file checkout (third hook argument 0) does not refresh.
        git(repo, ["checkout", "-q", "main"])
        let fileCheckout = git(repo, ["checkout", first, "--", "a.sh"])
        XCTAssertFalse(fileCheckout.err.contains("repro:"), fileCheckout.err)
    }

    func testAmendAndRebaseGoThroughPostRewriteAndUserHooksKeepArgsAndStdin() throws {
        let repo = try twoSpecRepo()
        let log = repo.path + "/.git/user-hook.log"
        // The user's own hooks: post-commit logs, post-rewrite logs its argument and stdin.
        repo.write(".git/hooks/post-commit", "#!/bin/sh\necho \"post-commit $*\" >> \(log)\n", executable: true)
        repo.write(
            ".git/hooks/post-rewrite", "#!/bin/sh\necho \"post-rewrite $1\" >> \(log)\ncat >> \(log)\nexit 0\n", executable: true)
        XCTAssertEqual(repro(["hooks", "install"], cwd: repo.path).code, 0)
        XCTAssertEqual(repro(["run", "a.yaml"], cwd: repo.path).code, 0)

        repo.write("a.sh", (repo.read("a.sh") ?? "") + "# v2\n", executable: true)
        git(repo, ["commit", "-qam", "v2"])
        let before = repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        repo.write("a.sh", (repo.read("a.sh") ?? "") + "# v2, amended\n", executable: true)
        git(repo, ["commit", "-q", "--amend", "-am", "v2 amended"])
        let after = repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
        let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertTrue(logged.contains("post-rewrite amend\n\(before) \(after)"), logged)
        XCTAssertEqual(status(repo)["stale"], .int(1))

        // A rebase: quiet on each step, one refresh at the end through post-rewrite.
        git(repo, ["checkout", "-q", "-b", "topic", "HEAD~1"])
        repo.write("b.sh", (repo.read("b.sh") ?? "") + "# topic\n", executable: true)
        git(repo, ["commit", "-qam", "topic change to b"])
        XCTAssertEqual(repro(["run", "b.yaml"], cwd: repo.path).code, 0)
        let rebase = git(repo, ["rebase", "-q", "main"])
        XCTAssertTrue((try? String(contentsOfFile: log, encoding: .utf8))?.contains("post-rewrite rebase") ?? false)
        XCTAssertFalse(rebase.err.contains("warning"), rebase.err)
        // On topic after the rebase, a.sh is main's v2-amended: a's entry (v1) stays stale,
        // b's entry (same b.sh tree) stays current.
        let st = status(repo)
        XCTAssertEqual(st["current"], .int(1))
        XCTAssertEqual(st["stale"], .int(1))
    }

    func testUninstallRestoresTheOriginalByteForByteAndInstallIsIdempotent() throws {
        let repo = try twoSpecRepo()
        let original = "#!/bin/bash\n# my hook\r\necho 'mine' \"$@\"\n"
        repo.write(".git/hooks/post-merge", original)
        chmod(repo.path + "/.git/hooks/post-merge", 0o750)
        XCTAssertEqual(repro(["hooks", "install"], cwd: repo.path).code, 0)
        let first = try FileManager.default.attributesOfItem(atPath: repo.path + "/.git/hooks/post-commit")
        let again = repro(["hooks", "install", "--json"], cwd: repo.path)
        XCTAssertEqual(again.code, 0)
        let states = parseJSON(again.out)["hooks"]?.arrayValue?.map { $0["state"]?.stringValue ?? "" }
        XCTAssertEqual(states, ["installed", "installed", "chained", "installed"])
        let second = try FileManager.default.attributesOfItem(atPath: repo.path + "/.git/hooks/post-commit")
        XCTAssertEqual(first[.modificationDate] as? Date, second[.modificationDate] as? Date, "installing twice changes nothing")

        XCTAssertEqual(repro(["hooks", "uninstall"], cwd: repo.path).code, 0)
        XCTAssertEqual(FileManager.default.contents(atPath: repo.path + "/.git/hooks/post-merge"), Data(original.utf8))
        let mode = (try FileManager.default.attributesOfItem(atPath: repo.path + "/.git/hooks/post-merge")[.posixPermissions] as? Int) ?? 0
        XCTAssertEqual(mode, 0o750)
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo.path + "/.git/hooks/post-commit"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo.path + "/.git/hooks/post-merge.repro-chained"))
    }

    func testCoreHooksPathIsHonoured() throws {
        let repo = try twoSpecRepo()
        repo.git("config", "core.hooksPath", ".githooks")
        XCTAssertEqual(repro(["hooks", "install"], cwd: repo.path).code, 0)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: repo.path + "/.githooks/post-commit"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: repo.path + "/.git/hooks/post-commit"))
        XCTAssertEqual(repro(["run", "a.yaml"], cwd: repo.path).code, 0)
        repo.write("a.sh", (repo.read("a.sh") ?? "") + "# x\n", executable: true)
        let commit = git(repo, ["commit", "-qm", "x", "--", "a.sh"])
        XCTAssertTrue(commit.err.contains("now stale"), commit.err)
    }

    func testLinkedWorktreeSharesTheHooksAndKeepsItsOwnStore() throws {
        let repo = try twoSpecRepo()
        let wt = repo.path + "-wt"
        defer { try? FileManager.default.removeItem(atPath: wt) }
        repo.git("worktree", "add", "-q", "-b", "feature", wt)
        let install = repro(["hooks", "install", "--json"], cwd: wt)
        XCTAssertEqual(install.code, 0, install.err)
        // Worktrees share the repository's hooks folder.
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: repo.path + "/.git/hooks/post-commit"))
        XCTAssertEqual(repro(["run", "a.yaml"], cwd: wt).code, 0)
        XCTAssertTrue(FileManager.default.fileExists(atPath: wt + "/.repro/store.sqlite"), "the worktree has its own store")
        let text = (try? String(contentsOfFile: wt + "/a.sh", encoding: .utf8)) ?? ""
        FileManager.default.createFile(atPath: wt + "/a.sh", contents: Data((text + "# wt\n").utf8))
        let commit = sh(["git", "commit", "-qam", "in the worktree"], cwd: wt, env: envWithRepro)
        XCTAssertEqual(commit.code, 0, commit.err)
        XCTAssertTrue(commit.err.contains("1 cache entry now stale"), commit.err)
    }

    /// Hooks call the repro that installed them, so one run by its path works without PATH;
    /// when that binary is gone and none is on PATH, git still succeeds, with one warning.
    func testHooksCallTheInstallingReproAndGitSucceedsWhenItIsGone() throws {
        let repo = try twoSpecRepo()
        var env = envWithRepro
        env["PATH"] = "/usr/bin:/bin"
        let copy = repo.path + "/../repro-copy-\(UUID().uuidString.prefix(6))"
        try FileManager.default.copyItem(atPath: TestPaths.repro, toPath: copy)
        let install = sh([copy, "hooks", "install"], cwd: repo.path, env: env)
        XCTAssertEqual(install.code, 0, install.err)
        XCTAssertTrue(install.err.isEmpty, "no warning: the hooks can reach \(copy): \(install.err)")
        XCTAssertEqual(sh([copy, "run", "a.yaml"], cwd: repo.path, env: env).code, 0)
        repo.write("a.sh", (repo.read("a.sh") ?? "") + "# faster\n", executable: true)
        let r = git(repo, ["commit", "-qam", "repro by its path only"], env: env)
        XCTAssertTrue(r.err.contains("1 cache entry now stale"), "the hook ran the installing repro: \(r.err)")
        try FileManager.default.removeItem(atPath: copy)
        repo.write("notes.txt", "x\n")
        let gone = git(repo, ["commit", "-qam", "no repro anywhere"], env: env)
        XCTAssertTrue(gone.err.contains("repro: warning: repro is neither where it was installed from nor on PATH"), gone.err)
        // Installing from a binary that will not be found warns at once.
        let tmpBin = repo.path + "/../repro-tmp-\(UUID().uuidString.prefix(6))"
        try FileManager.default.copyItem(atPath: TestPaths.repro, toPath: tmpBin)
        XCTAssertNil(HookInstaller.reachabilityWarning(reproPath: tmpBin, path: "/usr/bin:/bin"))
        try FileManager.default.removeItem(atPath: tmpBin)
        XCTAssertNotNil(HookInstaller.reachabilityWarning(reproPath: tmpBin, path: "/usr/bin:/bin"))
    }

    func testEmbeddedHookScriptIsTheOneInHooksFolder() throws {
        let file = try String(contentsOfFile: TestPaths.root + "/hooks/repro-hook", encoding: .utf8)
        XCTAssertEqual(HookScript.text, file)
    }
}
