import Foundation

/// The content-addressed store: `store.sqlite` (run records, WAL) plus zlib-compressed blobs
/// under `objects/`, named by the SHA-256 of their uncompressed content.
///
/// One `Store` owns one SQLite connection; use it from one thread. Several processes may open
/// the same store at once: writes are short IMMEDIATE transactions behind a busy timeout.
public final class Store {
    public let root: String
    let db: SQLiteDatabase
    /// Per-key locks (see KeyLocks), one open lock file per Store.
    public let keyLocks: KeyLocks
    private var gcLockFile: FileLock?

    /// The store-wide lock between blob writers (shared) and gc (exclusive), opened once.
    func gcLock() throws(StoreError) -> FileLock {
        if let l = gcLockFile { return l }
        let l = try FileLock(path: locksDir + "/gc.lock")
        gcLockFile = l
        return l
    }
    var objectsDir: String { root + "/objects" }
    var tmpDir: String { root + "/tmp" }
    var locksDir: String { root + "/locks" }

    /// Where the store for a repository lives: `$REPRO_STORE`, else `<repo>/.repro`.
    public static func defaultRoot(repoRoot: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let env = environment["REPRO_STORE"], !env.isEmpty {
            return env.hasPrefix("/") ? env : FileManager.default.currentDirectoryPath + "/" + env
        }
        return repoRoot + "/.repro"
    }

    /// Opens (creating if needed) the store at `root` and brings its schema up to date.
    public init(root: String) throws(StoreError) {
        self.root = root
        for dir in [root, root + "/objects", root + "/tmp", root + "/locks"] {
            try Store.makeDirectory(dir)
        }
        // The store ignores itself, so it never makes the work tree dirty.
        let ignore = root + "/.gitignore"
        if !FileManager.default.fileExists(atPath: ignore) {
            try? FileIO.writeAtomically(Array("# created by repro: the store is not part of the source\n*\n".utf8), to: ignore, sync: false)
        }
        db = try SQLiteDatabase(path: root + "/store.sqlite")
        keyLocks = try KeyLocks(locksDir: root + "/locks")
        try db.execRetryingBusy("PRAGMA journal_mode=WAL")
        // NORMAL in WAL mode: a commit survives a process crash; only a power loss can drop the
        // last transactions, never corrupt the file.
        try db.exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON")
        try migrate()
    }

    static func makeDirectory(_ path: String) throws(StoreError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw StoreError("cannot create \(path): \(error.localizedDescription); check permissions or set REPRO_STORE")
        }
    }

    /// SQLite's own integrity check; "ok" when the database is sound.
    public func integrityCheck() throws(StoreError) -> [String] {
        try db.prepare("PRAGMA integrity_check").query { $0.text(0) }
    }
}
