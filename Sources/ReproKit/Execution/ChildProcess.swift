import CReproSys
import Foundation

/// Where the signal handler writes: a pipe the supervising loop polls. Set once, read from a
/// signal handler, so it cannot live behind a lock.
nonisolated(unsafe) private var signalPipeWriteEnd: Int32 = -1

/// How a supervised child ended.
public enum ChildEnd: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32)
    case timedOut(after: Double)
    case interrupted(signal: Int32)

    /// The shell convention: the exit code, or 128 + signal.
    public var exitCode: Int32? {
        switch self {
        case .exited(let c): return c
        case .signaled(let s): return 128 + s
        case .timedOut: return nil
        case .interrupted(let s): return 128 + s
        }
    }
}

/// Starts a program with posix_spawn in its own process group (so a timeout or Ctrl-C can kill
/// everything it started) and supervises it: exit, timeout and SIGINT/SIGTERM/SIGHUP to repro.
///
/// Foundation.Process is not used: from async code it hands the child a blocked signal mask.
public struct ChildProcess {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: String
    public var stdoutPath: String
    public var stderrPath: String
    public var timeout: Double?
    /// Grace period between SIGTERM and SIGKILL when stopping the process group.
    public var killGrace: Double = 3

    public init(
        executable: String, arguments: [String], environment: [String: String], workingDirectory: String,
        stdoutPath: String, stderrPath: String, timeout: Double?
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.timeout = timeout
    }

    /// Runs to the end. `started` is called with the pid right after the spawn.
    public func run(started: (Int32) -> Void = { _ in }) throws(ExecutionError) -> (end: ChildEnd, duration: Double) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw ExecutionError("pipe failed: \(FileIO.errnoText())") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer {
            close(readEnd)
            close(writeEnd)
        }
        signalPipeWriteEnd = writeEnd
        let watched: [Int32] = [SIGINT, SIGTERM, SIGHUP]
        let handler: @convention(c) (Int32) -> Void = { sig in
            var b = UInt8(truncatingIfNeeded: sig)
            _ = write(signalPipeWriteEnd, &b, 1)
        }
        var previous: [Int32: sighandler_t?] = [:]
        for s in watched { previous[s] = signal(s, handler) }
        defer {
            for s in watched { signal(s, previous[s] ?? SIG_DFL) }
        }

        let pid = try spawn()
        let start = Clock.monotonic()
        started(pid)
        // A thread blocks in waitpid and reports the status through the same pipe as signals,
        // so one poll() sees exit, signals and the deadline.
        let waiterWrite = writeEnd
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            var msg: [UInt8] = [0xFF] + withUnsafeBytes(of: status) { Array($0) }
            _ = write(waiterWrite, &msg, msg.count)
        }

        var buffer: [UInt8] = []
        func nextEvent(until deadline: Double?) -> (status: Int32?, signal: Int32?) {
            while true {
                if let i = buffer.firstIndex(of: 0xFF), buffer.count >= i + 5 {
                    let status = buffer[(i + 1)...(i + 4)].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
                    return (status, nil)
                }
                if let first = buffer.first, first != 0xFF {
                    buffer.removeFirst()
                    return (nil, Int32(first))
                }
                var wait: Int32 = -1
                if let deadline {
                    let left = deadline - Clock.monotonic()
                    if left <= 0 { return (nil, nil) }
                    wait = Int32(min(left * 1000 + 1, Double(Int32.max)))
                }
                var pfd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                let rc = poll(&pfd, 1, wait)
                if rc < 0 && errno != EINTR { return (nil, nil) }
                if rc > 0 {
                    var chunk = [UInt8](repeating: 0, count: 64)
                    let n = read(readEnd, &chunk, 64)
                    if n > 0 { buffer.append(contentsOf: chunk[0..<n]) }
                }
            }
        }

        func decode(_ status: Int32) -> ChildEnd {
            let sig = status & 0x7F
            return sig == 0 ? .exited((status >> 8) & 0xFF) : .signaled(sig)
        }

        /// SIGTERM to the group, then SIGKILL after the grace period; returns when the child is reaped.
        func stopGroup() {
            kill(-pid, SIGTERM)
            let graceEnd = Clock.monotonic() + killGrace
            while true {
                let ev = nextEvent(until: graceEnd)
                if ev.status != nil { break }
                if ev.signal == nil {  // grace period over
                    kill(-pid, SIGKILL)
                    while nextEvent(until: nil).status == nil {}
                    break
                }
            }
            kill(-pid, SIGKILL)  // anything the leader left behind in its group
        }

        let deadline = timeout.map { start + $0 }
        while true {
            let ev = nextEvent(until: deadline)
            if let status = ev.status {
                return (decode(status), Clock.monotonic() - start)
            }
            if let sig = ev.signal {
                stopGroup()
                return (.interrupted(signal: sig), Clock.monotonic() - start)
            }
            // Deadline passed.
            stopGroup()
            return (.timedOut(after: timeout ?? 0), Clock.monotonic() - start)
        }
    }

    private func spawn() throws(ExecutionError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addchdir_np(&actions, workingDirectory)

        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Own process group; default dispositions and an empty mask whatever repro has set.
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, &attr, argv, envp)
        guard rc == 0 else {
            throw ExecutionError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// Finds a program the way a shell would: a name with a `/` is taken relative to
    /// `workingDirectory`; a bare name is searched on `path`.
    public static func resolveExecutable(_ name: String, path: String, workingDirectory: String) -> String? {
        if name.contains("/") {
            let full = name.hasPrefix("/") ? name : workingDirectory + "/" + name
            return access(full, X_OK) == 0 ? full : nil
        }
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = String(dir) + "/" + name
            var st = stat()
            if stat(candidate, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }
}
