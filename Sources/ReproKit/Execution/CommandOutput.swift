import Foundation

/// Runs a helper program (sbatch, squeue, ...) to completion and captures its output. Not for
/// simulations: those go through ChildProcess.
public enum CommandOutput {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    public static func run(_ argv: [String], environment: [String: String], stdin: String? = nil) throws(ExecutionError) -> Result {
        let path = environment["PATH"] ?? SimulationEnvironment.defaultPath
        guard let exe = ChildProcess.resolveExecutable(argv[0], path: path, workingDirectory: "/") else {
            throw ExecutionError("cannot find '\(argv[0])' on PATH=\(path); is it installed here?")
        }
        let dir = NSTemporaryDirectory() + "repro-cmd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw ExecutionError("cannot create \(dir): \(error.localizedDescription)")
        }
        defer { FileIO.removeTree(dir) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            FileManager.default.createFile(atPath: dir + "/in", contents: Data(stdin.utf8))
            posix_spawn_file_actions_addopen(&actions, 0, dir + "/in", O_RDONLY, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        posix_spawn_file_actions_addopen(&actions, 1, dir + "/out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, dir + "/err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var attr = posix_spawnattr_t()
        ChildProcess.initSpawnAttributes(&attr, newProcessGroup: false)
        defer { posix_spawnattr_destroy(&attr) }
        let cargv = argv.map { strdup($0) } + [nil]
        let cenv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            cargv.forEach { free($0) }
            cenv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attr, cargv, cenv)
        guard rc == 0 else { throw ExecutionError("cannot start \(exe): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let out = (try? FileIO.readAll(dir + "/out")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let err = (try? FileIO.readAll(dir + "/err")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let code = (status & 0x7F) == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Result(status: code, stdout: out, stderr: err)
    }
}
