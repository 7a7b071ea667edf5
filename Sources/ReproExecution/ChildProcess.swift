import CReproSys
import Foundation
import Synchronization
import ReproSupport

#if canImport(Glibc)
    import Glibc
#endif

/// How a supervised child ended.
public enum ChildEnd: Sendable, Equatable {
    case exited(Int32)
    case signaled(Int32)
    case timedOut(after: Double)
    case interrupted(signal: Int32)

    /// Decodes a `waitpid` status (WIFEXITED/WEXITSTATUS/WTERMSIG, which are macros Swift
    /// cannot call).
    init(waitStatus status: Int32) {
        let sig = status & 0x7F
        self = sig == 0 ? .exited((status >> 8) & 0xFF) : .signaled(sig)
    }

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
    /// A umask for the child (set in the child, by a /bin/sh that execs the program).
    public var umask: UInt32? = nil
    /// Hand the environment over in reverse order (a verify perturbation).
    public var reverseEnvironment = false
    /// Whether Ctrl-C to repro stops this child. Simulations: yes. Helpers (squeue, scancel):
    /// no, they are short, bounded by their timeout, and needed to cancel jobs after Ctrl-C.
    public var stopsOnInterrupt = true

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

    /// Runs to the end. `started` is called with the pid right after the spawn. Safe to call
    /// from several threads at once (a process pool).
    public func run(started: (Int32) -> Void = { _ in }) throws(ExecutionError) -> (end: ChildEnd, duration: Double) {
        let interrupts = Interrupts.shared
        let pid = try spawn()
        let start = Clock.monotonic()
        if stopsOnInterrupt { interrupts.register(group: pid) }
        defer { if stopsOnInterrupt { interrupts.unregister(group: pid) } }
        let interruptedBy: () -> Int32? = { stopsOnInterrupt ? interrupts.received : nil }
        started(pid)
        if timeout == nil {
            // No deadline: wait right here (a signal to repro stops the group through
            // Interrupts, and waitpid returns). Cheaper than a waiter thread per child.
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            kill(-pid, SIGKILL)  // anything the leader left behind in its group
            if let sig = interruptedBy() { return (.interrupted(signal: sig), Clock.monotonic() - start) }
            return (ChildEnd(waitStatus: status), Clock.monotonic() - start)
        }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            kill(-pid, SIGKILL)
            throw ExecutionError("pipe failed: \(FileIO.errnoText())")
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let (readEnd, writeEnd) = (fds[0], fds[1])
        defer { close(readEnd) }
        // A thread blocks in waitpid and reports the status through a pipe, so one poll()
        // sees the exit and the deadline with no polling delay.
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            _ = withUnsafeBytes(of: status) { write(writeEnd, $0.baseAddress, 4) }
            close(writeEnd)
        }

        /// The wait status, or nil when the deadline passed first.
        func waitStatus(until deadline: Double?) -> Int32? {
            var buffer: [UInt8] = []
            while buffer.count < 4 {
                var wait: Int32 = -1
                if let deadline {
                    let left = deadline - Clock.monotonic()
                    if left <= 0 { return nil }
                    wait = Int32(min(left * 1000 + 1, Double(Int32.max)))
                }
                var pfd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
                let rc = poll(&pfd, 1, wait)
                if rc < 0 && errno != EINTR { return nil }
                if rc > 0 {
                    var chunk = [UInt8](repeating: 0, count: 4 - buffer.count)
                    let n = read(readEnd, &chunk, chunk.count)
                    if n > 0 { buffer.append(contentsOf: chunk[0..<n]) }
                }
            }
            return buffer.withUnsafeBytes { $0.loadUnaligned(as: Int32.self) }
        }


        if let status = waitStatus(until: timeout.map { start + $0 }) {
            kill(-pid, SIGKILL)  // anything the leader left behind in its group
            if let sig = interruptedBy() { return (.interrupted(signal: sig), Clock.monotonic() - start) }
            return (ChildEnd(waitStatus: status), Clock.monotonic() - start)
        }
        // Deadline passed: SIGTERM to the group, SIGKILL after the grace period.
        kill(-pid, SIGTERM)
        if waitStatus(until: Clock.monotonic() + killGrace) == nil {
            kill(-pid, SIGKILL)
            _ = waitStatus(until: nil)
        }
        kill(-pid, SIGKILL)
        return (.timedOut(after: timeout ?? 0), Clock.monotonic() - start)
    }

    private func spawn() throws(ExecutionError) -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o644)
        posix_spawn_file_actions_addchdir_np(&actions, workingDirectory)

        var attr = posix_spawnattr_t()
        ChildProcess.initSpawnAttributes(&attr, newProcessGroup: true)
        defer { posix_spawnattr_destroy(&attr) }

        // A umask is the child's alone: set by /bin/sh, which then execs the program (same pid,
        // same process group). Changing repro's own umask around the spawn raced with other
        // threads creating files.
        var program = executable
        var words = [executable] + arguments
        if let mask = umask {
            program = "/bin/sh"
            words = ["/bin/sh", "-c", "umask " + String(mask, radix: 8) + " && exec \"$@\"", "sh"] + words
        }
        let argv = words.map { strdup($0) } + [nil]
        let ordered = environment.sorted { $0.key < $1.key }
        let envp = (reverseEnvironment ? ordered.reversed() : ordered).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, program, &actions, &attr, argv, envp)
        guard rc == 0 else {
            throw ExecutionError("cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// Default signal dispositions and an empty mask for the child, whatever repro has set
    /// (handlers, blocked signals); optionally its own process group.
    static func initSpawnAttributes(_ attr: inout posix_spawnattr_t, newProcessGroup: Bool) {
        posix_spawnattr_init(&attr)
        var all = sigset_t()
        sigfillset(&all)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setsigmask(&attr, &none)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if newProcessGroup {
            posix_spawnattr_setpgroup(&attr, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&attr, Int16(flags))
    }

    private static let resolved = Mutex<[String: String]>([:])
    /// Finds a program the way a shell would: a name with a `/` is taken relative to
    /// `workingDirectory`; a bare name is searched on `path`. Remembered per process (a sweep
    /// resolves the same program thousands of times).
    public static func resolveExecutable(_ name: String, path: String, workingDirectory: String) -> String? {
        let cacheKey = name + "\u{0}" + path + "\u{0}" + workingDirectory
        if let known = resolved.withLock({ $0[cacheKey] }) { return known }
        let found = search(name, path: path, workingDirectory: workingDirectory)
        if let found { resolved.withLock { $0[cacheKey] = found } }
        return found
    }

    /// Why `name` cannot be run: a file that exists but this user may not execute, a folder on
    /// the way it may not enter, or nothing there at all. For the error that replaces "not found".
    public static func whyNotRunnable(_ name: String, path: String, workingDirectory: String) -> String {
        let who = "user \(HostInfo.user) on \(HostInfo.hostname)"
        let candidates = name.contains("/")
            ? [name.hasPrefix("/") ? name : workingDirectory + "/" + name]
            : path.split(separator: ":").filter { !$0.isEmpty }.map { String($0) + "/" + name }
        for c in candidates {
            var st = stat()
            if stat(c, &st) == 0 {
                if st.st_mode & S_IFMT == S_IFDIR { continue }
                return "the program '\(name)' exists at \(c) but \(who) may not execute it "
                    + "(mode \(String(st.st_mode & 0o7777, radix: 8)), owner uid \(st.st_uid)); make it readable and executable for that user"
            }
            if errno == EACCES {
                return "the program '\(name)' at \(c) is behind a folder \(who) may not enter (permission denied); "
                    + "put it (the venv, say) where that user can read it, or give that user access"
            }
            // A link whose target is missing or unreadable (a venv's python into a private home).
            var lst = stat()
            if lstat(c, &lst) == 0, lst.st_mode & S_IFMT == S_IFLNK {
                let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: c)) ?? "?"
                return "the program '\(name)' at \(c) is a link to \(target), which \(who) cannot reach (missing, or in a folder that user may not enter)"
            }
        }
        return name.contains("/")
            ? "cannot find the program '\(name)' (no such file for \(who))"
            : "cannot find the program '\(name)' on PATH=\(path) on \(HostInfo.hostname)"
    }

    private static func search(_ name: String, path: String, workingDirectory: String) -> String? {
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
