import Foundation
import ReproStore
import ReproSupport

/// What `repro show ID` names: a run (the newest when no id is given) with the verifications
/// of its key, or a verification (the id `repro verify` prints). A run id wins when an id or
/// prefix could be either.
public enum ShownRecord {
    case run(RunRecord, verifications: [JSONValue])
    case verification(JSONValue)

    public static func find(_ id: String?, in store: Store) throws -> ShownRecord {
        let r: RunRecord
        if let id {
            do { r = try store.run(matching: id) } catch {
                // Not a run: a verification, or the run lookup's own error.
                if let v = try store.verification(matching: id) { return .verification(v) }
                throw error
            }
        } else {
            guard let newest = try store.recentRuns(limit: 1).first else {
                throw NotFoundError("the store at \(store.root) holds no runs yet; `repro run SPEC` records one")
            }
            r = newest
        }
        return .run(r, verifications: try store.verifications(forKey: r.key))
    }
}
