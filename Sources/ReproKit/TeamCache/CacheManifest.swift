import Crypto
import Foundation
import ReproSupport
import ReproStore

/// A refused manifest, key or signature in the team cache: exit 1 (a failed check), with what
/// failed and what to do.
public struct TrustError: ReproError {
    public let message: String
    public var exitCode: Int32 { 1 }
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// The public keys whose results a project accepts (`cache.trusted_keys`), by key id (the
/// SHA-256 of the raw Ed25519 key, as in attestations).
public struct TrustedKeys: Sendable {
    public struct Entry: Sendable {
        /// The raw 32-byte Ed25519 public key (CryptoKit's key type is not Sendable).
        public var raw: [UInt8]
        /// The file or config line it came from, for messages and records.
        public var label: String
        var key: Curve25519.Signing.PublicKey? { try? Curve25519.Signing.PublicKey(rawRepresentation: raw) }
    }
    public var byId: [String: Entry] = [:]

    public init() {}

    /// Resolves `cache.trusted_keys` (files relative to the repository, `~` expanded; inline
    /// PEM; or the one-line base64 of a `.pub` file) plus the signer's own public key.
    public static func load(_ settings: TeamCacheSettings, repoRoot: String) throws(ConfigError) -> TrustedKeys {
        var t = TrustedKeys()
        for (entry, origin) in settings.trustedKeys {
            let key: Curve25519.Signing.PublicKey
            let label: String
            if entry.contains("BEGIN PUBLIC KEY") || entry.hasPrefix("MCow") {
                let pem = entry.contains("BEGIN") ? entry : "-----BEGIN PUBLIC KEY-----\n\(entry)\n-----END PUBLIC KEY-----\n"
                guard let k = try? parse(pem: pem, path: origin) else {
                    throw ConfigError(at: origin, key: "cache.trusted_keys", "entry is not an Ed25519 public key (paste a .pub file made by `repro keygen`)")
                }
                key = k
                label = "key at \(origin)"
            } else {
                let path = resolve(entry, base: repoRoot)
                do { key = try Attestation.loadPublic(path) } catch {
                    throw ConfigError(at: origin, "cache.trusted_keys: \(error.message)")
                }
                label = entry
            }
            t.byId[Attestation.keyid(key)] = Entry(raw: Array(key.rawRepresentation), label: label)
        }
        // One's own results are trusted: the private key is in one's own hands.
        if let own = settings.signingKey, let k = try? Attestation.loadPrivate(resolve(own, base: repoRoot)) {
            t.byId[Attestation.keyid(k.publicKey)] = Entry(raw: Array(k.publicKey.rawRepresentation), label: "your signing key")
        }
        return t
    }

    /// Invalidates pulled runs whose signer is no longer in `cache.trusted_keys` (and restores
    /// those whose signer is back); see `Store.reconcileTrust`. A key file that cannot be read
    /// now trusts nothing it named.
    static func reconcile(store: Store, config: StoreConfig, repoRoot: String) throws(StoreError) {
        guard access(store.trustMarker, F_OK) == 0 else { return }
        let ids = (try? TrustedKeys.load(config.teamCache, repoRoot: repoRoot)).map { Set($0.byId.keys) } ?? []
        try store.reconcileTrust(trustedIds: ids)
    }

    static func parse(pem: String, path: String) throws(Attestation.Failure) -> Curve25519.Signing.PublicKey {
        let der = try Attestation.der(fromPEM: pem, label: "PUBLIC KEY", path: path)
        guard der.count == Attestation.publicPrefix.count + 32, Array(der.prefix(Attestation.publicPrefix.count)) == Attestation.publicPrefix,
            let k = try? Curve25519.Signing.PublicKey(rawRepresentation: der.suffix(32))
        else { throw Attestation.Failure(message: "\(path) is not an Ed25519 public key") }
        return k
    }

    static func resolve(_ path: String, base: String) -> String {
        if path.hasPrefix("~/") { return NSHomeDirectory() + String(path.dropFirst(1)) }
        return path.hasPrefix("/") ? path : base + "/" + path
    }
}

/// One producer's claim about one key, as stored in the team cache: the run record, the
/// blobs it names with their sizes, who pushed it and when, in a DSSE envelope signed with
/// Ed25519. Immutable once written; its object name holds the key, the signer and the digest
/// of the outputs, so a second producer (or a different result) never overwrites it.
public struct CacheManifest: Sendable {
    public static let payloadType = "application/vnd.repro.cache-manifest+json"
    /// A manifest is one record and a blob list; more than this is not one repro wrote.
    public static let maxBytes: Int64 = 4 << 20
    public static let type = "https://repro.invalid/team-cache/manifest/v1"

    public var record: RunRecord
    public var blobs: [(sha256: String, size: Int64)]
    /// The signer's key id, or nil for an unsigned manifest.
    public var keyid: String?
    public var pushedAt: String
    /// The object name under the remote's prefix.
    public var name: String
    /// How it was accepted on pull (for the record): the trusted key's label, or "unsigned".
    public var trustedAs: String = ""

    /// `manifests/KK/KEY/`: two hex digits fan the listing out, as blobs do.
    static func folder(key: String) -> String { "manifests/\(key.prefix(2))/\(key)/" }

    static func objectName(key: String, signer: String, digest: String) -> String {
        folder(key: key) + "\(signer)-\(digest.prefix(16)).json"
    }

    /// The key a manifest object name is filed under, or nil for a name that is not a manifest.
    static func key(ofObject rel: String) -> String? {
        let parts = rel.split(separator: "/")
        guard parts.count == 4, parts[0] == "manifests", parts[3].hasSuffix(".json") else { return nil }
        let key = String(parts[2])
        return Hashing.isSHA256Hex(key) && parts[1] == key.prefix(2) ? key : nil
    }

    /// Builds and signs (or, with `key` nil, leaves unsigned) the manifest of a succeeded run.
    static func make(
        record r: RunRecord, sizes: [String: Int64], signingKey key: Curve25519.Signing.PrivateKey?, pushedAt: String
    ) throws(TrustError) -> (name: String, envelope: [UInt8]) {
        var recordJSON = r.json.objectValue ?? [:]
        // What changes locally after the fact is not part of the claim.
        for volatile in ["hit_count", "stale_reasons", "invalidated_reason", "outputs_evicted_at", "origin", "task_ref"] {
            recordJSON.removeValue(forKey: volatile)
        }
        let kid = key.map { Attestation.keyid($0.publicKey) }
        let digest = r.outputsDigest
        let payload: JSONValue = [
            "_type": .string(type), "key": .string(r.key), "pushed_at": .string(pushedAt), "outputs_digest": .string(digest),
            "producer": ["keyid": kid.json, "user": .string(r.user), "host": .string(r.host)],
            "record": .object(recordJSON),
            "blobs": .array(r.blobHashes.map { ["sha256": .string($0), "size": .int(sizes[$0] ?? 0)] }),
        ]
        let body = Array(payload.canonical.utf8)
        var signatures: [JSONValue] = []
        if let key, let kid {
            guard let sig = try? key.signature(for: Attestation.pae(payloadType, body)) else {
                throw TrustError("signing the manifest of run \(r.runId) failed")
            }
            signatures.append(["keyid": .string(kid), "sig": .string(Data(sig).base64EncodedString())])
        }
        let envelope: JSONValue = [
            "payloadType": .string(payloadType), "payload": .string(Data(body).base64EncodedString()), "signatures": .array(signatures),
        ]
        // The signer part of the name: 16 hex digits of the key id, or "unsigned" and the
        // producer (so two people's unsigned pushes do not collide either).
        let signer = kid.map { String($0.prefix(16)) } ?? "unsigned-" + Hashing.sha256Hex(r.user + "@" + r.host).prefix(8)
        return (objectName(key: r.key, signer: signer, digest: digest), Array(envelope.canonical.utf8))
    }

    /// What a pulled manifest turned out to be.
    public enum Verdict: Sendable {
        case trusted(CacheManifest)
        /// Parsed and consistent, but not signed by a trusted key (served only with
        /// --trust-unsigned, and only when it carries no signature at all).
        case untrusted(CacheManifest, reason: String, unsigned: Bool)
        /// Malformed, inconsistent or with a bad signature: never served.
        case rejected(reason: String)
    }

    /// Parses and checks a manifest fetched from `name` (relative to the remote's prefix):
    /// the envelope, the signature against the trusted keys, that the key it claims is the key
    /// it is filed under and the one the record carries, and that the record is consistent
    /// with itself (`RecordIntegrity`: a trusted signer can still sign a wrong record).
    static func verify(_ bytes: [UInt8], name: String, trusted: TrustedKeys, now: Double = Clock.now()) -> Verdict {
        guard let env = try? JSONParser.parse(bytes), env["payloadType"]?.stringValue == payloadType,
            let b64 = env["payload"]?.stringValue, let body = Data(base64Encoded: b64)
        else { return .rejected(reason: "\(name) is not a repro cache manifest") }
        guard let payload = try? JSONParser.parse(Array(body)), payload["_type"]?.stringValue == type,
            let key = payload["key"]?.stringValue, let recordJSON = payload["record"]
        else { return .rejected(reason: "\(name): the manifest's payload is malformed") }
        guard CacheManifest.key(ofObject: name) == key else {
            return .rejected(reason: "\(name) claims key \(key.prefix(12)) but is filed under another key (a copied manifest)")
        }
        let record: RunRecord
        do { record = try RunRecord(json: recordJSON, source: name) } catch { return .rejected(reason: error.message) }
        guard record.key == key, record.status == .succeeded else {
            return .rejected(reason: "\(name): the record's key or status does not match the manifest")
        }
        let problems = RecordIntegrity.problems(record, now: now)
        guard problems.isEmpty else {
            return .rejected(reason: "\(name): the record is not consistent with itself: " + problems.prefix(3).joined(separator: "; "))
        }
        guard payload["outputs_digest"]?.stringValue == record.outputsDigest, name.hasSuffix("-\(record.outputsDigest.prefix(16)).json") else {
            return .rejected(reason: "\(name): the outputs digest does not match the record's outputs")
        }
        var sizes: [String: Int64] = [:]
        for b in payload["blobs"]?.arrayValue ?? [] {
            guard let h = b["sha256"]?.stringValue, let s = b["size"]?.intValue, s >= 0 else {
                return .rejected(reason: "\(name): a blob entry without a SHA-256 and a size")
            }
            sizes[h] = s
        }
        for o in record.outputs {
            if let listed = sizes[o.sha256], listed != o.size {
                return .rejected(reason: "\(name): output \(o.name) claims \(o.size) bytes but its blob is listed with \(listed)")
            }
            sizes[o.sha256] = o.size
        }
        guard record.blobHashes.allSatisfy({ sizes[$0] != nil }) else {
            return .rejected(reason: "\(name): the manifest does not list every blob its record names")
        }
        var m = CacheManifest(
            record: record, blobs: record.blobHashes.map { ($0, sizes[$0] ?? 0) }, keyid: nil,
            pushedAt: payload["pushed_at"]?.stringValue ?? "", name: name)
        let sigs = env["signatures"]?.arrayValue ?? []
        if sigs.isEmpty { return .untrusted(m, reason: "\(name) is unsigned", unsigned: true) }
        let pae = Attestation.pae(payloadType, Array(body))
        var unknown: [String] = []
        for s in sigs {
            guard let kid = s["keyid"]?.stringValue, let sigText = s["sig"]?.stringValue, let sig = Data(base64Encoded: sigText) else {
                continue
            }
            guard let entry = trusted.byId[kid] else {
                unknown.append(String(kid.prefix(16)))
                continue
            }
            guard entry.key?.isValidSignature(sig, for: pae) == true else {
                return .rejected(reason: "\(name): the signature by \(entry.label) does not verify (the manifest was altered)")
            }
            m.keyid = kid
            m.trustedAs = entry.label
            return .trusted(m)
        }
        return .untrusted(
            m, reason: "\(name) is signed by a key not in cache.trusted_keys (key id \(unknown.joined(separator: ", ")))", unsigned: false)
    }
}
