import Foundation
import ReproSupport

/// What `repro cache gc` did (or would do, with `--dry-run`).
public struct GCReport: Sendable {
    package var dryRun: Bool
    package var entriesEvicted = 0
    package var blobsRemoved = 0
    /// Temp files left by blob writes that were killed.
    package var tempFilesRemoved = 0
    /// Task folders that killed runs and sweeps left in the store's tmp folder.
    package var taskFoldersRemoved = 0
    /// Bytecode folders (`pycache/`) of code identities no run used for `bytecodeIdle`.
    package var bytecodeFoldersRemoved = 0
    package var bytesFreed: Int64 = 0
    /// Set when the database could not be written (a full disk): what was freed without it,
    /// and what is left for the next gc.
    package var warning: String?

    package var json: JSONValue {
        [
            "dry_run": .bool(dryRun), "entries_evicted": .int(Int64(entriesEvicted)),
            "blobs_removed": .int(Int64(blobsRemoved)), "temp_files_removed": .int(Int64(tempFilesRemoved)),
            "task_folders_removed": .int(Int64(taskFoldersRemoved)),
            "bytecode_folders_removed": .int(Int64(bytecodeFoldersRemoved)), "bytes_freed": .int(bytesFreed), "warning": warning.json,
        ]
    }

    public init(
        dryRun: Bool,
        bytesFreed: Int64 = 0,
        warning: String? = nil
    ) {
        self.dryRun = dryRun
        self.bytesFreed = bytesFreed
        self.warning = warning
    }
}

extension Store {
    /// Blob files younger than this that nothing references are left alone: a run may have
    /// written them and not yet committed the record that refers to them.
    static let orphanGrace: Double = 3600
    /// A code identity's bytecode folder unused this long is removed (a run of it compiles again).
    static let bytecodeIdle: Double = 7 * 86400

    /// Runs `body` while holding the store-wide GC lock shared: blob writes and the record that
    /// references them happen under it, so gc (which takes it exclusively) never deletes a
    /// blob between the two.
    package func withBlobWriteLock<T>(_ body: () throws -> T) throws -> T {
        let lock = try gcLock()
        try lock.lock(shared: true)
        defer { lock.unlock() }
        return try body()
    }

    /// Removes what killed runs left in the store's tmp folder, without writing the database
    /// (so it works on a full disk): sweep slot folders of processes that are gone, run slots
    /// nobody holds, `run-ID` folders of runs that are no longer running, and temp files of
    /// pushes and pulls whose process is gone. Links inside are removed, never followed.
    package func removeLeftovers(dryRun: Bool, into report: inout GCReport) {
        let running = Set((try? runs(inStatus: .running).map(\.runId)) ?? [])
        for name in FileIO.directoryNames(tmpDir) ?? [] {
            let path = tmpDir + "/" + name
            var remove = false
            var emptyOnly = false
            var slotLock: FileLock?
            if name.hasPrefix("sweep-") || name.hasPrefix("pull-") || name.hasPrefix("push-") {
                // sweep-PID-slotN, pull-PID-..., push-PID-...: the owner is gone.
                let pid = name.split(separator: "-").dropFirst().first.flatMap { Int32($0) }
                remove = pid.map { kill($0, 0) != 0 && errno == ESRCH } ?? false
            } else if name.hasPrefix("run-slot-") {
                // A slot nobody holds: its contents are a killed run's (kept until the next run).
                if let lock = try? FileLock(path: locksDir + "/" + name + ".lock"), lock.tryLock() {
                    slotLock = lock
                    remove = true
                    emptyOnly = true
                }
            } else if name.hasPrefix("run-") {
                // A run makes its folder just before it is recorded as running: young ones stay.
                var st = stat()
                let young = lstat(path, &st) == 0 && Clock.now() - Double(st.modified.tv_sec) < 300
                remove = !young && !running.contains(String(name.dropFirst(4)))
            }
            guard remove else { continue }
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            let size = DiskSpace.size(path) - (emptyOnly ? Int64(st.st_blocks) * 512 : 0)
            // A slot is left alone when its last run left nothing (files kept for the next run).
            if emptyOnly && size <= 0 && (FileIO.directoryNames(path + "/out") ?? []).isEmpty {
                slotLock?.unlock()
                continue
            }
            report.taskFoldersRemoved += 1
            report.bytesFreed += size
            if !dryRun { if emptyOnly { FileIO.emptyTree(path) } else { FileIO.removeTree(path) } }
            slotLock?.unlock()
        }
        // Each run touches its identity's bytecode folder: an idle one is an old commit's.
        let pycache = root + "/pycache"
        for name in FileIO.directoryNames(pycache) ?? [] {
            let path = pycache + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, Clock.now() - Double(st.modified.tv_sec) > Store.bytecodeIdle else { continue }
            report.bytecodeFoldersRemoved += 1
            report.bytesFreed += DiskSpace.size(path)
            if !dryRun { FileIO.removeTree(path) }
        }
    }

    /// Evicts the output blobs of the entries that match every filter (none given: no entry),
    /// then deletes every blob nothing references. Run records are never deleted. `report`
    /// carries what `removeLeftovers` already did.
    package func gc(filters: [EntrySelection], dryRun: Bool, report given: GCReport? = nil) throws -> GCReport {
        let lock = try gcLock()
        try lock.lock()
        defer { lock.unlock() }
        var report = given ?? GCReport(dryRun: dryRun)
        if given == nil { removeLeftovers(dryRun: dryRun, into: &report) }

        var evictIds: [String] = []
        if !filters.isEmpty {
            let parts = filters.map(\.sql)
            let clause = parts.map { "(\($0.0))" }.joined(separator: " AND ")
            evictIds = try db.prepare(
                "SELECT run_id FROM runs WHERE status = 'succeeded' AND outputs_evicted_at IS NULL AND \(clause)"
            ).query(parts.flatMap(\.1)) { $0.text(0) }
        }
        report.entriesEvicted = evictIds.count
        let evicting = Set(evictIds)

        // Everything still referenced: outputs of runs not evicted (and not being evicted),
        // and every run's stdout, stderr and patch, which audit keeps needing.
        var referenced = Set<String>()
        let outputRefs = try db.prepare(
            "SELECT o.run_id, o.sha256 FROM outputs o JOIN runs r USING (run_id) WHERE r.outputs_evicted_at IS NULL"
        ).query([]) { ($0.text(0), $0.text(1)) }
        for (runId, sha) in outputRefs where !evicting.contains(runId) { referenced.insert(sha) }
        let runRefs = try db.prepare("SELECT stdout_blob, stderr_blob, patch_blob, packages_blob FROM runs").query([]) {
            [$0.optText(0), $0.optText(1), $0.optText(2), $0.optText(3)]
        }
        for row in runRefs {
            for case let sha? in row { referenced.insert(sha) }
        }
        let justReleased = Set(
            try db.prepare("SELECT o.sha256 FROM outputs o WHERE o.run_id IN (SELECT value FROM json_each(?))")
                .query([.text(JSONValue.array(evictIds.map { .string($0) }).canonical)]) { $0.text(0) })

        // Candidates: blob files on disk (whether or not the table knows them).
        var doomed: [(sha: String, path: String, size: Int64)] = []
        let now = Clock.now()
        for prefix in (try? FileManager.default.contentsOfDirectory(atPath: objectsDir)) ?? [] where prefix.count == 2 {
            let dir = objectsDir + "/" + prefix
            for rest in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] {
                let sha = prefix + rest
                guard sha.count == 64, !referenced.contains(sha) else { continue }
                var st = stat()
                guard stat(dir + "/" + rest, &st) == 0 else { continue }
                let age = now - Double(st.modified.tv_sec)
                if age < Store.orphanGrace && !justReleased.contains(sha) { continue }
                doomed.append((sha, dir + "/" + rest, Int64(st.st_size)))
            }
        }
        report.blobsRemoved = doomed.count
        report.bytesFreed += doomed.reduce(0) { $0 + $1.size }
        // Temp files of blob writes that never finished (a kill -9): with the exclusive lock
        // held no writer is mid-blob, but only files of dead processes or an hour old go.
        var staleTemps: [(path: String, size: Int64)] = []
        for name in (try? FileManager.default.contentsOfDirectory(atPath: tmpDir)) ?? [] where name.hasPrefix("blob-") {
            let path = tmpDir + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { continue }
            let pid = name.split(separator: "-").dropFirst().first.flatMap { Int32($0) }
            let dead = pid.map { kill($0, 0) != 0 && errno == ESRCH } ?? true
            if dead || now - Double(st.modified.tv_sec) > Store.orphanGrace { staleTemps.append((path, Int64(st.st_size))) }
        }
        report.tempFilesRemoved = staleTemps.count
        report.bytesFreed += staleTemps.reduce(0) { $0 + $1.size }
        guard !dryRun else { return report }
        for t in staleTemps { unlink(t.path) }

        var dbFull = false
        do throws(StoreError) {
            try db.transaction { () throws(StoreError) in
                let stamp = Clock.iso8601(Clock.now())
                let evict = try db.prepare("UPDATE runs SET outputs_evicted_at = ? WHERE run_id = ?")
                for id in evictIds { try evict.run([.text(stamp), .text(id)]) }
                let drop = try db.prepare("DELETE FROM blobs WHERE sha256 = ?")
                for d in doomed { try drop.run([.text(d.sha)]) }
            }
        } catch {
            guard error.isDiskFull else { throw error }
            dbFull = true
        }
        if dbFull {
            // A full disk: blobs no run refers to go anyway (their rows are dropped by the next
            // gc); the outputs being evicted stay, since their runs could not be marked.
            let unreferenced = doomed.filter { !justReleased.contains($0.sha) || evicting.isEmpty }
            for d in unreferenced { unlink(d.path) }
            report.entriesEvicted = 0
            report.blobsRemoved = unreferenced.count
            report.bytesFreed -= doomed.filter { justReleased.contains($0.sha) && !evicting.isEmpty }.reduce(0) { $0 + $1.size }
            report.warning = "the database could not be written (the disk is full); blobs nothing refers to were removed, "
                + "no outputs were evicted: run `repro cache gc` again once there is space"
            return report
        }
        for d in doomed where unlink(d.path) != 0 && errno != ENOENT {
            throw StoreError("cannot delete blob \(d.path): \(FileIO.errnoText())")
        }
        // Shrinking the WAL needs room to write; on a nearly full disk it waits for a later gc.
        try? checkpoint(truncate: true)
        return report
    }
}
