import Foundation
import ReproSupport

/// What `repro fsck` found.
package struct FsckReport: Sendable {
    package struct Problem: Sendable {
        /// corrupt-blob, missing-blob, unreadable-blob, database
        package var kind: String
        package var detail: String
        package var json: JSONValue { ["kind": .string(kind), "detail": .string(detail)] }
    }

    package var blobsChecked = 0
    package var referencesChecked = 0
    package var integrity: [String] = []
    /// Damage: a corrupt or missing blob, a bad database. `repro fsck` exits 4.
    package var problems: [Problem] = []
    /// Blobs no record names, like git's dangling objects: what interrupted runs leave, not
    /// damage. Reported as information.
    package var dangling: [Problem] = []
    package var ok: Bool { problems.isEmpty }

    package var json: JSONValue {
        [
            "ok": .bool(ok), "blobs_checked": .int(Int64(blobsChecked)), "references_checked": .int(Int64(referencesChecked)),
            "integrity_check": .array(integrity.map { .string($0) }), "problems": .array(problems.map(\.json)),
            "dangling": .array(dangling.map(\.json)),
        ]
    }
}

extension Store {
    /// Checks every blob against its hash, every reference from the database to a blob, that
    /// every blob is referenced by a record, and SQLite's integrity check; then checkpoints the
    /// WAL, so everything recorded so far lives in the database file itself.
    ///
    /// Runs that finish during the scan are not reported: references are read first (one read
    /// transaction), blobs are listed after, gc is held off (shared gc lock), and anything that
    /// looks wrong is checked again before it is reported (unreferenced blobs under the
    /// exclusive lock, when no writer is between writing a blob and recording it).
    package func fsck() throws -> FsckReport {
        var report = FsckReport()
        report.integrity = try integrityCheck()
        if report.integrity != ["ok"] {
            for line in report.integrity { report.problems.append(.init(kind: "database", detail: line)) }
        }
        let lock = try gcLock()
        try lock.lock(shared: true)
        var locked = true
        defer { if locked { lock.unlock() } }
        let refs = try blobReferences()
        // Every blob file: decompress and hash, streaming.
        var onDisk = Set<String>()
        for sha in listBlobFiles() {
            onDisk.insert(sha)
            report.blobsChecked += 1
            switch checkBlob(sha) {
            case .intact: break
            case .missing: onDisk.remove(sha)  // removed meanwhile (nothing else can, under the lock)
            case .corrupt(let why): report.problems.append(.init(kind: "corrupt-blob", detail: "\(blobPath(sha)): \(why)"))
            }
        }
        var reported = Set<String>()
        for (sha, what) in refs {
            report.referencesChecked += 1
            if !onDisk.contains(sha) && !hasBlob(sha) && reported.insert(sha + what).inserted {
                report.problems.append(.init(kind: "missing-blob", detail: "blob \(sha) (\(what)) is not in \(objectsDir)"))
            }
        }
        // Blobs no record names: a record lost (a deleted WAL, a restored old database) or a run
        // killed between storing its outputs and recording them. Checked again with writers
        // held off, since a run being ingested right now has written blobs it has not recorded yet.
        let referenced = Set(refs.map(\.0))
        var unreferenced = onDisk.subtracting(referenced)
        if !unreferenced.isEmpty {
            lock.unlock()
            locked = false
            try lock.lock()
            locked = true
            unreferenced.subtract(try blobReferences().map(\.0))
            for sha in unreferenced.sorted() where hasBlob(sha) {
                report.dangling.append(
                    .init(
                        kind: "unreferenced-blob",
                        detail: "blob \(sha) is referenced by no run record (records lost, or a run killed before it was recorded); "
                            + "`repro cache gc` removes it once it is an hour old"))
            }
        }
        // Shrinking the WAL needs room to write: a full disk must not fail the check itself.
        try? checkpoint(truncate: true)
        return report
    }

    /// Every blob reference in the database, read in one transaction (one snapshot).
    func blobReferences() throws(StoreError) -> [(String, String)] {
        try db.exec("BEGIN")
        defer { try? db.exec("COMMIT") }
        var refs: [(String, String)] = []
        refs += try db.prepare(
            "SELECT o.sha256, 'output ' || o.name || ' of run ' || o.run_id FROM outputs o JOIN runs r USING (run_id) WHERE r.outputs_evicted_at IS NULL"
        ).query([]) { ($0.text(0), $0.text(1)) }
        for (col, what) in [
            ("stdout_blob", "stdout"), ("stderr_blob", "stderr"), ("patch_blob", "dirty patch"), ("packages_blob", "package list"),
        ] {
            refs += try db.prepare("SELECT \(col), run_id FROM runs WHERE \(col) IS NOT NULL").query([]) {
                ($0.text(0), "\(what) of run \($0.text(1))")
            }
        }
        refs += try db.prepare("SELECT sha256, 'blobs table row' FROM blobs").query([]) { ($0.text(0), $0.text(1)) }
        return refs
    }

    /// The SHA-256 names of the blob files under objects/.
    func listBlobFiles() -> [String] {
        var out: [String] = []
        for prefix in ((try? FileManager.default.contentsOfDirectory(atPath: objectsDir)) ?? []).sorted() where prefix.count == 2 {
            for rest in ((try? FileManager.default.contentsOfDirectory(atPath: objectsDir + "/" + prefix)) ?? []).sorted()
            where prefix.count + rest.count == 64 {
                out.append(prefix + rest)
            }
        }
        return out
    }

    /// Copies the WAL into the database file. With `truncate`, waits for readers and empties
    /// the WAL (maintenance commands); without, does what it can without waiting (end of a sweep).
    package func checkpoint(truncate: Bool = false) throws(StoreError) {
        try db.exec(truncate ? "PRAGMA wal_checkpoint(TRUNCATE)" : "PRAGMA wal_checkpoint(PASSIVE)")
    }

    /// Empties a WAL grown past `limit` bytes, waiting at most `waitingMs` for other processes'
    /// readers (busy: left for a later command). Commands that only record hits (a no-op
    /// re-run of a large sweep writes a few MB of hit rows) otherwise leave it growing, since
    /// passive checkpoints did not let it start over, and every later open pays for reading it
    /// (in proportion to its size). One stat when it is small.
    package func trimWAL(over limit: Int64, waitingMs: Int = 100) {
        var st = stat()
        guard stat(root + "/store.sqlite-wal", &st) == 0, Int64(st.st_size) > limit else { return }
        try? db.exec("PRAGMA busy_timeout=\(waitingMs)")
        try? checkpoint(truncate: true)
        try? db.exec("PRAGMA busy_timeout=\(busyTimeoutMs)")
    }
}
