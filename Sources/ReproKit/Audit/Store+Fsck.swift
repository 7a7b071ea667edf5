import Foundation

/// What `repro fsck` found.
public struct FsckReport: Sendable {
    public struct Problem: Sendable {
        /// corrupt-blob, missing-blob, unreadable-blob, database
        public var kind: String
        public var detail: String
        public var json: JSONValue { ["kind": .string(kind), "detail": .string(detail)] }
    }

    public var blobsChecked = 0
    public var referencesChecked = 0
    public var integrity: [String] = []
    public var problems: [Problem] = []
    public var ok: Bool { problems.isEmpty }

    public var json: JSONValue {
        [
            "ok": .bool(ok), "blobs_checked": .int(Int64(blobsChecked)), "references_checked": .int(Int64(referencesChecked)),
            "integrity_check": .array(integrity.map { .string($0) }), "problems": .array(problems.map(\.json)),
        ]
    }
}

extension Store {
    /// Checks every blob against its hash, every reference from the database to a blob, and
    /// SQLite's integrity check.
    public func fsck() throws -> FsckReport {
        var report = FsckReport()
        report.integrity = try integrityCheck()
        if report.integrity != ["ok"] {
            for line in report.integrity { report.problems.append(.init(kind: "database", detail: line)) }
        }
        // Every blob file: decompress and hash.
        var onDisk = Set<String>()
        for prefix in ((try? FileManager.default.contentsOfDirectory(atPath: objectsDir)) ?? []).sorted() where prefix.count == 2 {
            for rest in ((try? FileManager.default.contentsOfDirectory(atPath: objectsDir + "/" + prefix)) ?? []).sorted() {
                let sha = prefix + rest
                guard sha.count == 64 else { continue }
                onDisk.insert(sha)
                report.blobsChecked += 1
                do {
                    _ = try readBlob(sha)
                } catch {
                    report.problems.append(.init(kind: "corrupt-blob", detail: "\(blobPath(sha)): \(error.message)"))
                }
            }
        }
        // Every reference from the database.
        var refs: [(String, String)] = []
        refs += try db.prepare(
            "SELECT o.sha256, 'output ' || o.name || ' of run ' || o.run_id FROM outputs o JOIN runs r USING (run_id) WHERE r.outputs_evicted_at IS NULL"
        ).query([]) { ($0.text(0), $0.text(1)) }
        for (col, what) in [("stdout_blob", "stdout"), ("stderr_blob", "stderr"), ("patch_blob", "dirty patch")] {
            refs += try db.prepare("SELECT \(col), run_id FROM runs WHERE \(col) IS NOT NULL").query([]) {
                ($0.text(0), "\(what) of run \($0.text(1))")
            }
        }
        refs += try db.prepare("SELECT sha256, 'blobs table row' FROM blobs").query([]) { ($0.text(0), $0.text(1)) }
        var reported = Set<String>()
        for (sha, what) in refs {
            report.referencesChecked += 1
            if !onDisk.contains(sha) && reported.insert(sha + what).inserted {
                report.problems.append(.init(kind: "missing-blob", detail: "blob \(sha) (\(what)) is not in \(objectsDir)"))
            }
        }
        return report
    }
}
