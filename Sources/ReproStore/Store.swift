import Crypto
import Foundation
import ReproSupport

/// The content-addressed store: `store.sqlite` (run records, WAL) plus zlib-compressed blobs
/// under `objects/`, named by the SHA-256 of their uncompressed content.
///
/// One `Store` owns one SQLite connection; use it from one thread. Several processes may open
/// the same store at once: writes are short IMMEDIATE transactions behind a busy timeout.
public final class Store {
    package let root: String
    package let db: SQLiteDatabase
    /// How long a write waits for another process (milliseconds).
    let busyTimeoutMs: Int
    /// Per-key locks (see KeyLocks), one open lock file per Store.
    package let keyLocks: KeyLocks
    private var gcLockFile: FileLock?
    /// Blobs this process has checked against their hash (see `isIntact`).
    var verifiedBlobs = Set<String>()
    private var cachedSecretKey: SymmetricKey?

    /// The store's own random key for recording passthrough values (`secret.key`, mode 0600,
    /// made on first use). Never leaves the store; a copy of the records alone cannot be used
    /// to guess the values.
    package func secretKey() throws(StoreError) -> SymmetricKey {
        if let k = cachedSecretKey { return k }
        let path = root + "/secret.key"
        if let bytes = try? FileIO.readAll(path, limit: 4096), bytes.count == 32 {
            cachedSecretKey = SymmetricKey(data: bytes)
            return SymmetricKey(data: bytes)
        }
        var fresh = [UInt8](repeating: 0, count: 32)
        var rng = SystemRandomNumberGenerator()
        for i in fresh.indices { fresh[i] = rng.next() }
        // Written exclusively: when two processes race, the first key wins and both read it.
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        if fd >= 0 {
            defer { close(fd) }
            try FileIO.writeAll(fd, fresh, path: path)
            guard fsync(fd) == 0 else { throw StoreError("fsync \(path) failed: \(FileIO.errnoText())") }
        } else if errno != EEXIST {
            throw StoreError("cannot create \(path): \(FileIO.errnoText()); check the store's permissions")
        }
        for _ in 0..<50 {
            if let bytes = try? FileIO.readAll(path, limit: 4096), bytes.count == 32 {
                cachedSecretKey = SymmetricKey(data: bytes)
                return SymmetricKey(data: bytes)
            }
            usleep(10_000)  // the winner of the race is still writing it
        }
        throw StoreError("\(path) is not a 32-byte key; delete it and run again (only passthrough hashes depend on it)")
    }

    /// The store-wide lock between blob writers (shared) and gc (exclusive), opened once.
    func gcLock() throws(StoreError) -> FileLock {
        if let l = gcLockFile { return l }
        let l = try FileLock(path: locksDir + "/gc.lock")
        gcLockFile = l
        return l
    }
    var objectsDir: String { root + "/objects" }
    package var tmpDir: String { root + "/tmp" }
    package var locksDir: String { root + "/locks" }

    /// Where the store for a repository lives: `$REPRO_STORE`, else `<repo>/.repro`.
    package static func defaultRoot(repoRoot: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let env = environment["REPRO_STORE"], !env.isEmpty {
            return env.hasPrefix("/") ? env : FileManager.default.currentDirectoryPath + "/" + env
        }
        return repoRoot + "/.repro"
    }

    /// Opens (creating if needed) the store at `root` and brings its schema up to date.
    /// `busyTimeout`: how long a write waits for another process's (seconds); git hooks use a
    /// short one so a busy store never holds up a commit.
    public init(root: String, busyTimeout: Double = 30) throws(StoreError) {
        self.root = root
        for dir in [root, root + "/objects", root + "/tmp", root + "/locks"] {
            try FileIO.makeDirectory(dir)
        }
        // The store ignores itself, so it never makes the work tree dirty.
        let ignore = root + "/.gitignore"
        if !FileManager.default.fileExists(atPath: ignore) {
            try? FileIO.writeAtomically(Array("# created by repro: the store is not part of the source\n*\n".utf8), to: ignore, sync: false)
        }
        busyTimeoutMs = Int(busyTimeout * 1000)
        db = try SQLiteDatabase(path: root + "/store.sqlite", busyTimeoutMs: Int32(busyTimeout * 1000))
        keyLocks = try KeyLocks(locksDir: root + "/locks")
        try db.execRetryingBusy("PRAGMA journal_mode=WAL", timeout: busyTimeout)
        // NORMAL in WAL mode: a commit survives a process crash; only a power loss can drop the
        // last transactions, never corrupt the file.
        // journal_size_limit: when the WAL starts over, its file is cut back to 16 MB.
        try db.exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA journal_size_limit=16777216")
        try migrate()
        // A WAL left large by earlier commands is copied back once, here (without waiting).
        trimWAL(over: 64 << 20)
    }

    /// The store is closed without SQLite's checkpoint-on-close (it fsyncs: milliseconds at the
    /// end of every command). But every repro process is the store's first connection, and a
    /// first connection reads the whole WAL back (checksumming every frame) and forgets what
    /// was already checkpointed, so the WAL never starts over on its own: after a few hundred
    /// cache hits each open read megabytes. Emptying it here once it passes 512 KB keeps that
    /// read small, for one checkpoint every few dozen hits (bench/targets.sh times the hit).
    /// Without waiting: when another process is reading, a later command does it.
    deinit { trimWAL(over: Store.walTrimBytes, waitingMs: 0) }

    static let walTrimBytes: Int64 = 512 << 10

    /// SQLite's own integrity check; "ok" when the database is sound.
    func integrityCheck() throws(StoreError) -> [String] {
        try db.prepare("PRAGMA integrity_check").query { $0.text(0) }
    }
}
