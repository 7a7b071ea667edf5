import Foundation
import ReproStore

/// A sweep's runs, held compactly: per run, which of the sweep's distinct keys it has; per
/// distinct key, its digest, its first run (whose spec is regenerated from the sweep when the
/// point is dispatched or priced) and its spec's name and backend (indexes into small tables).
/// Tens of bytes a point where a prepared point with its spec took kilobytes (bench/targets.sh
/// reports the memory of a 200,000-point dry run).
struct SweepTable {
    /// Per run (in sweep order): the index of its key in `keys`.
    private(set) var keyOfRun: [UInt32] = []
    /// Per distinct key, in order of first appearance.
    private(set) var keys: [KeyDigest] = []
    private(set) var firstRun: [UInt32] = []
    private var nameOf: [UInt32] = []
    private var backendOf: [UInt32] = []
    private var names: [String] = []
    private var backends: [String] = []
    private var nameIndex: [String: UInt32] = [:]
    private var backendIndex: [String: UInt32] = [:]
    private var seen: [KeyDigest: UInt32] = [:]

    init(expecting runs: Int) {
        // Exactly (most sweeps have as many keys as runs): growth by doubling would hold up
        // to twice as much.
        keyOfRun.reserveCapacity(runs)
        keys.reserveCapacity(runs)
        firstRun.reserveCapacity(runs)
        nameOf.reserveCapacity(runs)
        backendOf.reserveCapacity(runs)
    }

    var runCount: Int { keyOfRun.count }
    var uniqueCount: Int { keys.count }

    /// Adds the next run of the sweep; true when its key is new.
    @discardableResult
    mutating func append(key digest: KeyDigest, name: String, backend: String) -> Bool {
        if let u = seen[digest] {
            keyOfRun.append(u)
            return false
        }
        let u = UInt32(keys.count)
        seen[digest] = u
        keys.append(digest)
        firstRun.append(UInt32(keyOfRun.count))
        nameOf.append(Self.intern(name, in: &names, index: &nameIndex))
        backendOf.append(Self.intern(backend, in: &backends, index: &backendIndex))
        keyOfRun.append(u)
        return true
    }

    /// Drops the lookup used while building (a dictionary of every key).
    mutating func seal() {
        seen = [:]
        nameIndex = [:]
        backendIndex = [:]
    }

    func key(_ u: Int) -> String { keys[u].hex }
    func name(_ u: Int) -> String { names[Int(nameOf[u])] }
    func backend(_ u: Int) -> String { backends[Int(backendOf[u])] }

    private static func intern(_ s: String, in table: inout [String], index: inout [String: UInt32]) -> UInt32 {
        // Points come in runs of one name and backend: compare with the last before hashing.
        // (The table's entries are distinct, so the last one's index is its position.)
        if let last = table.last, last == s { return UInt32(table.count - 1) }
        if let i = index[s] { return i }
        let i = UInt32(table.count)
        table.append(s)
        index[s] = i
        return i
    }
}

/// How the distinct keys of a sweep ended, filled in as hits are served and runs finish.
final class SweepOutcomes {
    struct Outcome: Sendable {
        var runId: String?
        var cache: RunOutcome.Cache
        var status: RunStatus
        var backend: String
        var jobId: String?
        var message: String?
    }

    /// Per distinct key: its entry in `outcomes`, or -1 (not served, not run).
    private(set) var slot: [Int32]
    private(set) var outcomes: [Outcome] = []

    init(count: Int) {
        slot = [Int32](repeating: -1, count: count)
    }

    func set(_ u: Int, _ o: Outcome) {
        if slot[u] >= 0 {
            outcomes[Int(slot[u])] = o
        } else {
            slot[u] = Int32(outcomes.count)
            outcomes.append(o)
        }
    }

    /// Room for `n` more outcomes at once (growing by doubling would hold up to twice as many).
    func reserve(_ n: Int) {
        outcomes.reserveCapacity(outcomes.count + n)
    }

    func get(_ u: Int) -> Outcome? { slot[u] >= 0 ? outcomes[Int(slot[u])] : nil }

    func hit(_ u: Int, _ h: Store.ServableHit) {
        set(u, Outcome(runId: h.runId, cache: .hit, status: .succeeded, backend: h.backend, jobId: h.jobId))
    }

    func finished(_ u: Int, _ r: RunRecord) {
        set(u, Outcome(runId: r.runId, cache: .miss, status: r.status, backend: r.backend, jobId: r.jobId, message: r.message))
    }
}

/// Every point of a sweep with how it ended, in sweep order: built as it is read from the
/// compact table (a large sweep's summary held as structs with hex keys took tens of MB).
public struct SweepRuns: RandomAccessCollection, Sendable {
    let keyOfRun: [UInt32]
    let keys: [KeyDigest]
    let slot: [Int32]
    let outcomes: [SweepOutcomes.Outcome]
    /// For points neither served nor run: the backend they would have gone to, per distinct key.
    let notRunBackend: [String]
    let dryRun: Bool

    init(
        keyOfRun: [UInt32] = [], keys: [KeyDigest] = [], slot: [Int32] = [], outcomes: [SweepOutcomes.Outcome] = [],
        notRunBackend: [String] = [], dryRun: Bool = false
    ) {
        self.keyOfRun = keyOfRun
        self.keys = keys
        self.slot = slot
        self.outcomes = outcomes
        self.notRunBackend = notRunBackend
        self.dryRun = dryRun
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { keyOfRun.count }

    public subscript(i: Int) -> SweepPointResult {
        let u = Int(keyOfRun[i])
        let key = keys[u].hex
        guard slot[u] >= 0 else {
            return SweepPointResult(
                runId: nil, key: key, cache: .miss, status: dryRun ? .running : .interrupted, backend: notRunBackend[u], jobId: nil,
                message: dryRun ? "would run" : "not run")
        }
        let o = outcomes[Int(slot[u])]
        return SweepPointResult(runId: o.runId, key: key, cache: o.cache, status: o.status, backend: o.backend, jobId: o.jobId, message: o.message)
    }
}
