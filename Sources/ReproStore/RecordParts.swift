import Foundation
import ReproSupport

// The structured parts of a run record. Each writes the JSON the store keeps (and team-cache
// manifests carry) and reads it back; nothing here joins a cache key but `RecordedCode`, whose
// JSON is byte for byte what keys were computed from.

/// How long a run is expected to take, and which tier of the estimate answered.
public struct RuntimeEstimate: Sendable {
    public enum Tier: String, Sendable {
        /// The median of earlier succeeded runs (same config, or the same spec scaled).
        case history
        /// The spec's `estimate.seconds` formula.
        case parametric
        /// `orchestration.default_estimate` (5 minutes).
        case `default`
    }
    public var seconds: Double
    public var tier: Tier
    /// How it was reached, in words.
    public var detail: String

    public init(seconds: Double, tier: Tier, detail: String) {
        self.seconds = seconds
        self.tier = tier
        self.detail = detail
    }

    public var json: JSONValue { ["seconds": .double(seconds), "tier": .string(tier.rawValue), "detail": .string(detail)] }

    /// nil unless every field is there with its type.
    public init?(json j: JSONValue) {
        guard let s = j["seconds"]?.numberValue, let t = j["tier"]?.stringValue.flatMap(Tier.init(rawValue:)) else { return nil }
        self.init(seconds: s, tier: t, detail: j["detail"]?.stringValue ?? "")
    }
}

/// Where a run goes and why.
public struct Routing: Sendable {
    public var backend: String
    public var reason: String
    /// How it was chosen.
    public enum Choice: String, Sendable {
        /// `--backend NAME`
        case option
        /// `backend: NAME` in the spec
        case spec
        /// `backend: auto`, by the estimate's band
        case auto
        /// asked on the terminal (the middle band)
        case prompt
        /// the middle band with no terminal: `orchestration.ask_default`
        case askDefault = "ask_default"
        /// the chosen backend failed; run locally
        case fallback
    }
    public var by: Choice

    public init(backend: String, reason: String, by: Choice) {
        self.backend = backend
        self.reason = reason
        self.by = by
    }

    public var json: JSONValue { ["backend": .string(backend), "reason": .string(reason), "by": .string(by.rawValue)] }

    public init?(json j: JSONValue) {
        guard let b = j["backend"]?.stringValue, let by = j["by"]?.stringValue.flatMap(Choice.init(rawValue:)) else { return nil }
        self.init(backend: b, reason: j["reason"]?.stringValue ?? "", by: by)
    }
}

/// The code identity a run was computed from: the tree or blob id of every code path, the
/// commits of submodules, and symlinks with where they lead.
public struct RecordedCode: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var path: String
        /// "tree", "blob", "commit" (a submodule) or "absent" (not in HEAD: untracked or
        /// ignored, and therefore dirty). A path through a symlink names what the link leads to.
        public var kind: String
        public var id: String

        public init(path: String, kind: String, id: String) {
            self.path = path
            self.kind = kind
            self.id = id
        }
    }

    /// A symlink at or under a code path, and what its target was (a git object id, or the
    /// SHA-256 of content outside the repository), so changing the target changes the key.
    public struct Link: Sendable, Equatable {
        public var path: String
        public var target: String
        public var id: String

        public init(path: String, target: String, id: String) {
            self.path = path
            self.target = target
            self.id = id
        }
    }

    public struct Submodule: Sendable, Equatable {
        public var path: String
        public var commit: String

        public init(path: String, commit: String) {
            self.path = path
            self.commit = commit
        }
    }

    public var paths: [Entry]
    public var submodules: [Submodule]
    public var links: [Link]

    public init(paths: [Entry] = [], submodules: [Submodule] = [], links: [Link] = []) {
        self.paths = paths
        self.submodules = submodules
        self.links = links
    }

    /// What joins the cache key. `links` appears only when there are any, so keys of code
    /// without symlinks keep their value.
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "paths": .array(paths.map { .object(["path": .string($0.path), "kind": .string($0.kind), "id": .string($0.id)]) }),
            "submodules": .array(submodules.map { .object(["path": .string($0.path), "commit": .string($0.commit)]) }),
        ]
        if !links.isEmpty {
            o["links"] = .array(links.map { .object(["path": .string($0.path), "target": .string($0.target), "id": .string($0.id)]) })
        }
        return .object(o)
    }

    /// nil when a field is missing or of another type (a record is refused, never half-read).
    public init?(json j: JSONValue) {
        guard let o = j.objectValue, let ps = o["paths"]?.arrayValue, let ss = o["submodules"]?.arrayValue else { return nil }
        var paths: [Entry] = []
        for e in ps {
            guard let p = e["path"]?.stringValue, let k = e["kind"]?.stringValue, let i = e["id"]?.stringValue else { return nil }
            paths.append(Entry(path: p, kind: k, id: i))
        }
        var subs: [Submodule] = []
        for e in ss {
            guard let p = e["path"]?.stringValue, let c = e["commit"]?.stringValue else { return nil }
            subs.append(Submodule(path: p, commit: c))
        }
        var links: [Link] = []
        for e in o["links"]?.arrayValue ?? [] {
            guard let p = e["path"]?.stringValue, let t = e["target"]?.stringValue, let i = e["id"]?.stringValue else { return nil }
            links.append(Link(path: p, target: t, id: i))
        }
        self.init(paths: paths, submodules: subs, links: links)
    }
}

/// One submission of a run to a backend and how it ended (backend failures included).
public struct Attempt: Sendable, Equatable {
    public var backend: String
    /// The backend's type.
    public var type: String
    /// succeeded, failed, interrupted, or "backend failure".
    public var outcome: String
    /// Where a backend failure happened (submit, wait, collect).
    public var stage: String?
    public var reason: String?
    public var durationS: Double
    public var cost: Double?
    public var finishedAt: String
    /// Which resubmission of a lost task this was (nil for the first submission).
    public var resubmission: Int?

    public init(
        backend: String, type: String, outcome: String, stage: String? = nil, reason: String? = nil, durationS: Double, cost: Double? = nil,
        finishedAt: String, resubmission: Int? = nil
    ) {
        self.backend = backend
        self.type = type
        self.outcome = outcome
        self.stage = stage
        self.reason = reason
        self.durationS = durationS
        self.cost = cost
        self.finishedAt = finishedAt
        self.resubmission = resubmission
    }

    public static let backendFailure = "backend failure"

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "backend": .string(backend), "type": .string(type), "outcome": .string(outcome), "duration_s": .double(durationS),
            "cost": cost.map { .double($0) } ?? .null, "finished_at": .string(finishedAt),
        ]
        if let stage { o["stage"] = .string(stage) }
        if let reason { o["reason"] = .string(reason) }
        if let resubmission { o["resubmissions"] = .int(Int64(resubmission)) }
        return .object(o)
    }

    public init?(json j: JSONValue) {
        guard let b = j["backend"]?.stringValue, let o = j["outcome"]?.stringValue else { return nil }
        self.init(
            backend: b, type: j["type"]?.stringValue ?? "", outcome: o, stage: j["stage"]?.stringValue, reason: j["reason"]?.stringValue,
            durationS: j["duration_s"]?.numberValue ?? 0, cost: j["cost"]?.numberValue, finishedAt: j["finished_at"]?.stringValue ?? "",
            resubmission: j["resubmissions"]?.intValue.map { Int($0) })
    }
}

/// A backend failure that sent the run to another backend.
public struct Fallback: Sendable, Equatable {
    public var from: String
    public var to: String
    public var reason: String
    public var stage: String
    public var at: String

    public init(from: String, to: String, reason: String, stage: String, at: String) {
        self.from = from
        self.to = to
        self.reason = reason
        self.stage = stage
        self.at = at
    }

    public var json: JSONValue {
        ["from": .string(from), "to": .string(to), "reason": .string(reason), "stage": .string(stage), "at": .string(at)]
    }

    public init?(json j: JSONValue) {
        guard let f = j["from"]?.stringValue, let t = j["to"]?.stringValue else { return nil }
        self.init(from: f, to: t, reason: j["reason"]?.stringValue ?? "", stage: j["stage"]?.stringValue ?? "", at: j["at"]?.stringValue ?? "")
    }
}

/// Who submitted a run that ran elsewhere, and from which host.
public struct Submitter: Sendable, Equatable {
    public var user: String
    public var host: String

    public init(user: String, host: String) {
        self.user = user
        self.host = host
    }

    public var json: JSONValue { ["user": .string(user), "host": .string(host)] }

    public init?(json j: JSONValue) {
        guard let u = j["user"]?.stringValue, let h = j["host"]?.stringValue else { return nil }
        self.init(user: u, host: h)
    }
}

/// Where a run pulled from a team cache came from, and on what trust it was accepted.
public struct PullOrigin: Sendable, Equatable {
    /// The remote's name here, and its URL.
    public var remote: String
    public var url: String
    /// The manifest the record came in.
    public var manifest: String
    /// The signing key's id (nil: unsigned, accepted by trust_unsigned).
    public var signer: String?
    public var trustedAs: String
    public var pushedAt: String
    public var pulledAt: String

    public init(remote: String, url: String, manifest: String, signer: String?, trustedAs: String, pushedAt: String, pulledAt: String) {
        self.remote = remote
        self.url = url
        self.manifest = manifest
        self.signer = signer
        self.trustedAs = trustedAs
        self.pushedAt = pushedAt
        self.pulledAt = pulledAt
    }

    public var json: JSONValue {
        [
            "remote": .string(remote), "url": .string(url), "manifest": .string(manifest), "signer": signer.map { .string($0) } ?? .null,
            "trusted_as": .string(trustedAs), "pushed_at": .string(pushedAt), "pulled_at": .string(pulledAt),
        ]
    }

    public init?(json j: JSONValue) {
        guard let r = j["remote"]?.stringValue else { return nil }
        self.init(
            remote: r, url: j["url"]?.stringValue ?? "", manifest: j["manifest"]?.stringValue ?? "", signer: j["signer"]?.stringValue,
            trustedAs: j["trusted_as"]?.stringValue ?? "", pushedAt: j["pushed_at"]?.stringValue ?? "", pulledAt: j["pulled_at"]?.stringValue ?? "")
    }
}

extension Attempt {
    /// A record's attempt list; nil when it is not a list or an entry lacks its fields.
    public static func list(json j: JSONValue) -> [Attempt]? {
        guard let a = j.arrayValue else { return nil }
        let items = a.compactMap(Attempt.init(json:))
        return items.count == a.count ? items : nil
    }
}

extension RunRecord {
    /// A record's environment; nil when it is not a mapping of strings.
    public static func environment(json j: JSONValue) -> [String: String]? {
        guard let o = j.objectValue else { return nil }
        let m = o.compactMapValues(\.stringValue)
        return m.count == o.count ? m : nil
    }
}
