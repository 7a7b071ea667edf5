import CSQLite
import Foundation
import ReproSupport

/// Owns one SQLite connection and closes it in deinit. Used from one thread at a time.
package final class SQLiteDatabase {
    let path: String
    private(set) var handle: OpaquePointer?
    /// Prepared statements by SQL text: a sweep runs the same few statements thousands of
    /// times, and parsing SQL is a real part of their cost. Callers use a statement at once
    /// (bind, step to the end) and never hold it across another call with the same SQL.
    private var statements: [String: SQLiteStatement] = [:]

    init(path: String, busyTimeoutMs: Int32 = 30_000) throws(StoreError) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let msg = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw StoreError("cannot open the store database \(path): \(msg)")
        }
        handle = db
        // Set before anything else: with several writers even enabling WAL can meet a lock.
        _ = repro_sqlite_busy_timeout(db, busyTimeoutMs)
        _ = repro_sqlite_no_checkpoint_on_close(db)
    }

    deinit {
        statements.removeAll()
        sqlite3_close_v2(handle)
    }

    func check(_ rc: Int32, _ what: String) throws(StoreError) {
        guard rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW else {
            let msg = String(cString: sqlite3_errmsg(handle))
            throw StoreError("store database \(path): \(what) failed: \(msg) (SQLite code \(rc))\(fullAdvice(rc))", sqliteCode: rc)
        }
    }

    /// For SQLITE_FULL: what to free and how (see `DiskSpace`).
    func fullAdvice(_ rc: Int32) -> String {
        StoreError("", sqliteCode: rc).isDiskFull ? ". " + DiskSpace.advice(storeRoot: (path as NSString).deletingLastPathComponent) : ""
    }

    /// Runs one or more statements that take no parameters and return no rows.
    package func exec(_ sql: String) throws(StoreError) {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(err)
            throw StoreError("store database \(path): \(msg) (SQLite code \(rc)) in: \(sql.prefix(80))\(fullAdvice(rc))", sqliteCode: rc)
        }
    }

    /// Runs a statement that SQLite may refuse with SQLITE_BUSY without consulting the busy
    /// handler (switching to WAL while other processes open the same new database), retrying
    /// for up to `timeout` seconds.
    func execRetryingBusy(_ sql: String, timeout: Double = 30) throws(StoreError) {
        let deadline = Clock.monotonic() + timeout
        while true {
            let rc = sqlite3_exec(handle, sql, nil, nil, nil)
            if rc == SQLITE_OK { return }
            let busy = rc == SQLITE_BUSY || rc == SQLITE_LOCKED
            if !busy || Clock.monotonic() > deadline {
                try check(rc, sql)
                return
            }
            usleep(UInt32.random(in: 2_000...20_000))
        }
    }

    package func prepare(_ sql: String) throws(StoreError) -> SQLiteStatement {
        if let cached = statements[sql] { return cached }
        var stmt: OpaquePointer?
        try check(sqlite3_prepare_v2(handle, sql, -1, &stmt, nil), "preparing \(sql.prefix(60))")
        guard let stmt else { throw StoreError("store database \(path): empty statement \(sql.prefix(60))") }
        let statement = SQLiteStatement(stmt, db: self)
        if statements.count >= 128 { statements.removeAll() }
        statements[sql] = statement
        return statement
    }

    /// Runs `body` in one transaction. IMMEDIATE takes the write lock up front, so two writers
    /// queue on the busy timeout instead of failing with SQLITE_BUSY half-way.
    package func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try inTransaction("BEGIN IMMEDIATE", body)
    }

    /// Runs `body` in one read transaction (one snapshot of the database), unless a transaction
    /// is already open.
    func reading<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        guard sqlite3_get_autocommit(handle) != 0 else { return try body() }
        return try inTransaction("BEGIN", body)
    }

    private func inTransaction<T>(_ begin: String, _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try exec(begin)
        do {
            let result = try body()
            try exec("COMMIT")
            return result
        } catch {
            try? exec("ROLLBACK")
            throw error
        }
    }

    var changes: Int { Int(sqlite3_changes(handle)) }
}

/// Value that can be bound to a statement parameter.
package enum SQLValue {
    case null, int(Int64), double(Double), text(String), blob([UInt8])
}

/// Owns one prepared statement and finalizes it in deinit.
package final class SQLiteStatement {
    private let stmt: OpaquePointer
    // Unowned: the database caches its statements and finalizes them before it closes.
    private unowned let db: SQLiteDatabase

    init(_ stmt: OpaquePointer, db: SQLiteDatabase) {
        self.stmt = stmt
        self.db = db
    }

    deinit { sqlite3_finalize(stmt) }

    @discardableResult
    func bind(_ values: [SQLValue]) throws(StoreError) -> SQLiteStatement {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(stmt, idx)
            case .int(let x): rc = sqlite3_bind_int64(stmt, idx, x)
            case .double(let x): rc = sqlite3_bind_double(stmt, idx, x)
            case .text(let s): rc = sqlite3_bind_text(stmt, idx, s, -1, repro_sqlite_transient())
            case .blob(let b):
                rc = b.withUnsafeBytes { sqlite3_bind_blob(stmt, idx, $0.baseAddress, Int32(b.count), repro_sqlite_transient()) }
            }
            try db.check(rc, "binding parameter \(idx)")
        }
        return self
    }

    /// Steps once; true when a row is available.
    func step() throws(StoreError) -> Bool {
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        try db.check(rc, "running a statement")
        return false
    }

    package func run(_ values: [SQLValue] = []) throws(StoreError) {
        try bind(values)
        while try step() {}
    }

    /// All rows, each mapped by `row`.
    package func query<T>(_ values: [SQLValue] = [], _ row: (SQLiteStatement) -> T) throws(StoreError) -> [T] {
        try bind(values)
        var out: [T] = []
        while try step() { out.append(row(self)) }
        return out
    }

    /// Each row handed to `row` as it is stepped (nothing collected).
    func each(_ values: [SQLValue] = [], _ row: (SQLiteStatement) throws(StoreError) -> Void) throws(StoreError) {
        try bind(values)
        while try step() { try row(self) }
    }

    /// All rows, each decoded by `row` through column names; a row that cannot be decoded (a
    /// missing column, bad JSON, an unknown status) is an error, never a silent default.
    func rows<T>(_ values: [SQLValue] = [], _ row: (Row) throws(StoreError) -> T) throws(StoreError) -> [T] {
        try bind(values)
        let r = Row(statement: self, columns: columnIndex)
        var out: [T] = []
        while try step() { out.append(try row(r)) }
        return out
    }

    /// Column positions by name (the name or `AS` alias in the query), read once.
    private lazy var columnIndex: [String: Int32] = {
        var out: [String: Int32] = [:]
        for i in 0..<sqlite3_column_count(stmt) {
            if let n = sqlite3_column_name(stmt, i) { out[String(cString: n)] = i }
        }
        return out
    }()

    /// One result row, read by column name.
    struct Row {
        let statement: SQLiteStatement
        let columns: [String: Int32]

        func index(_ name: String) throws(StoreError) -> Int32 {
            guard let i = columns[name] else {
                throw StoreError("store database \(statement.db.path): the query has no column '\(name)' (a repro bug; please report it)")
            }
            return i
        }
        func text(_ name: String) throws(StoreError) -> String { statement.text(try index(name)) }
        func optText(_ name: String) throws(StoreError) -> String? { statement.optText(try index(name)) }
        func int(_ name: String) throws(StoreError) -> Int64 { statement.int(try index(name)) }
        func optInt(_ name: String) throws(StoreError) -> Int64? { statement.optInt(try index(name)) }
        func optDouble(_ name: String) throws(StoreError) -> Double? { statement.optDouble(try index(name)) }
    }

    func isNull(_ col: Int32) -> Bool { sqlite3_column_type(stmt, col) == SQLITE_NULL }
    package func int(_ col: Int32) -> Int64 { sqlite3_column_int64(stmt, col) }
    func double(_ col: Int32) -> Double { sqlite3_column_double(stmt, col) }
    package func text(_ col: Int32) -> String {
        guard let p = sqlite3_column_text(stmt, col) else { return "" }
        return String(cString: p)
    }
    package func optText(_ col: Int32) -> String? { isNull(col) ? nil : text(col) }
    /// A column holding a cache key, as its digest (nil unless 64 hex digits); no String made.
    func digest(_ col: Int32) -> KeyDigest? {
        guard let p = sqlite3_column_text(stmt, col) else { return nil }
        return KeyDigest(utf8: UnsafeBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, col))))
    }
    func optInt(_ col: Int32) -> Int64? { isNull(col) ? nil : int(col) }
    func optDouble(_ col: Int32) -> Double? { isNull(col) ? nil : double(col) }
}
