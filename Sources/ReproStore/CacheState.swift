import ReproSupport

/// Where a cache entry (a succeeded run) stands for the current HEAD.
package enum CacheState: String, Sendable {
    /// Its code identity matches HEAD and it may be served.
    case current
    /// A code path it depends on changed since (or it was invalidated by hand).
    case stale
    /// Older than `cache.max_age`: not served.
    case expired
    /// `repro cache gc` removed its output blobs: the record stays, the outputs are gone.
    case evicted
    /// Not a cache entry: the run failed or was interrupted.
    case failed
}

/// One code path that changed between an entry and HEAD.
package struct StaleReason: Sendable, Equatable, Hashable {
    package var path: String
    /// The git object id the entry was computed from ("absent" if the path was not committed).
    package var from: String
    /// The id at HEAD ("absent" if HEAD no longer has the path).
    package var to: String

    package var json: JSONValue { ["path": .string(path), "from": .string(from), "to": .string(to)] }

    package var text: String { "\(path) changed \(from.prefix(8)) → \(to.prefix(8))" }
}

extension RunRecord {
    /// The entry's state as last recorded by refresh, invalidation, gc and expiry.
    package func cacheState(maxAge: Double, now: Double = Clock.now()) -> CacheState {
        guard status == .succeeded else { return .failed }
        if outputsEvictedAt != nil { return .evicted }
        if invalidatedReason != nil || !staleReasons.isEmpty { return .stale }
        if let f = finishedAt.flatMap(Clock.parseISO8601), now - f > maxAge { return .expired }
        return .current
    }
}
