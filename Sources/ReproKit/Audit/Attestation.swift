import Crypto
import Foundation
import ReproSupport
import ReproStore

/// Signed provenance: an in-toto Statement (subjects = the run's outputs and their SHA-256,
/// predicate = the run record) in a DSSE envelope signed with Ed25519.
public enum Attestation {
    public static let payloadType = "application/vnd.in-toto+json"
    public static let statementType = "https://in-toto.io/Statement/v1"
    public static let predicateType = "https://repro.invalid/provenance/run/v1"

    /// A failed attestation step: always exit 1, with what failed.
    public struct Failure: ReproError {
        public let message: String
        public var exitCode: Int32 { 1 }
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    // MARK: keys (PEM, PKCS#8 / SubjectPublicKeyInfo, so openssl reads them too)

    static let privatePrefix: [UInt8] = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]
    static let publicPrefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]

    static func pem(_ label: String, _ der: [UInt8]) -> String {
        let b64 = Data(der).base64EncodedString()
        var lines: [String] = []
        var i = b64.startIndex
        while i < b64.endIndex {
            let j = b64.index(i, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex
            lines.append(String(b64[i..<j]))
            i = j
        }
        return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----\n"
    }

    static func der(fromPEM text: String, label: String, path: String) throws(Failure) -> [UInt8] {
        let body = text.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard text.contains("BEGIN \(label)"), let data = Data(base64Encoded: body) else {
            throw Failure(message: "\(path) is not a PEM \(label.lowercased()); make one with `repro keygen --out FILE`")
        }
        return Array(data)
    }

    /// Writes an Ed25519 key pair: FILE (private, mode 0600) and FILE.pub.
    public static func keygen(out path: String) throws(Failure) {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw Failure(message: "\(path) already exists; repro does not overwrite keys, choose another name")
        }
        let key = Curve25519.Signing.PrivateKey()
        let priv = pem("PRIVATE KEY", privatePrefix + Array(key.rawRepresentation))
        let pub = pem("PUBLIC KEY", publicPrefix + Array(key.publicKey.rawRepresentation))
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(message: "cannot create \(path): \(FileIO.errnoText())") }
        defer { close(fd) }
        do {
            try FileIO.writeAll(fd, Array(priv.utf8), path: path)
            try FileIO.writeAtomically(Array(pub.utf8), to: path + ".pub", sync: true)
        } catch {
            throw Failure(message: error.message)
        }
    }

    /// Reads a PEM key file and returns its raw 32 key bytes after checking the DER prefix.
    static func rawKey(_ path: String, label: String, prefix: [UInt8]) throws(Failure) -> [UInt8] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw Failure(message: "cannot read the key file \(path)")
        }
        let der = try der(fromPEM: text, label: label, path: path)
        guard der.count == prefix.count + 32, Array(der.prefix(prefix.count)) == prefix else {
            throw Failure(message: "\(path) is not an Ed25519 \(label.lowercased())")
        }
        return Array(der.suffix(32))
    }

    static func loadPrivate(_ path: String) throws(Failure) -> Curve25519.Signing.PrivateKey {
        let raw = try rawKey(path, label: "PRIVATE KEY", prefix: privatePrefix)
        guard let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else { throw Failure(message: "\(path) is not an Ed25519 private key") }
        return key
    }

    public static func loadPublic(_ path: String) throws(Failure) -> Curve25519.Signing.PublicKey {
        let raw = try rawKey(path, label: "PUBLIC KEY", prefix: publicPrefix)
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else { throw Failure(message: "\(path) is not an Ed25519 public key") }
        return key
    }

    static func keyid(_ key: Curve25519.Signing.PublicKey) -> String { Hashing.sha256Hex(key.rawRepresentation) }

    // MARK: statements and envelopes

    public static func statement(for r: RunRecord) -> JSONValue {
        var predicate = r.json.objectValue ?? [:]
        for volatile in ["hit_count", "stale_reasons", "invalidated_reason", "outputs_evicted_at"] {
            predicate.removeValue(forKey: volatile)
        }
        return [
            "_type": .string(statementType),
            "subject": .array(r.outputs.map { ["name": .string($0.name), "digest": ["sha256": .string($0.sha256)]] }),
            "predicateType": .string(predicateType),
            "predicate": .object(predicate),
        ]
    }

    /// DSSE's pre-authentication encoding: what is actually signed.
    static func pae(_ type: String, _ body: [UInt8]) -> [UInt8] {
        Array("DSSEv1 \(type.utf8.count) \(type) \(body.count) ".utf8) + body
    }

    /// Signs the run's statement; returns the envelope JSON text.
    public static func sign(run r: RunRecord, keyPath: String) throws(Failure) -> (envelope: String, keyid: String) {
        guard r.status == .succeeded else { throw Failure(message: "run \(r.runId) \(r.status.rawValue); only succeeded runs are attested") }
        let key = try loadPrivate(keyPath)
        let payload = Array(statement(for: r).canonical.utf8)
        guard let sig = try? key.signature(for: pae(payloadType, payload)) else {
            throw Failure(message: "signing with \(keyPath) failed")
        }
        let kid = keyid(key.publicKey)
        let envelope: JSONValue = [
            "payloadType": .string(payloadType), "payload": .string(Data(payload).base64EncodedString()),
            "signatures": [["keyid": .string(kid), "sig": .string(Data(sig).base64EncodedString())]],
        ]
        return (envelope.pretty + "\n", kid)
    }

    /// Checks an envelope against a public key and the run, and the run's outputs in the store
    /// against the attested digests. Throws a `Failure` that says which check failed.
    public static func verify(envelope text: String, publicKeyPath: String, run r: RunRecord, store: Store) throws(Failure) {
        let key = try loadPublic(publicKeyPath)
        guard let env = try? JSONParser.parse(text), let payloadB64 = env["payload"]?.stringValue,
            let payload = Data(base64Encoded: payloadB64), env["payloadType"]?.stringValue == payloadType
        else { throw Failure(message: "the attestation of run \(r.runId) is not a DSSE envelope") }
        let signed = pae(payloadType, Array(payload))
        let sigs = env["signatures"]?.arrayValue ?? []
        let good = sigs.contains { s in
            guard let b = s["sig"]?.stringValue, let sig = Data(base64Encoded: b) else { return false }
            return key.isValidSignature(sig, for: signed)
        }
        guard good else {
            throw Failure(
                message: "attestation of run \(r.runId): the signature does not verify with \(publicKeyPath): "
                    + "the statement was changed after signing, or it was signed with another key")
        }
        guard let statement = try? JSONParser.parse(Array(payload)), statement["_type"]?.stringValue == statementType else {
            throw Failure(message: "attestation of run \(r.runId): the payload is not an in-toto Statement")
        }
        guard statement["predicate"]?["run_id"]?.stringValue == r.runId else {
            throw Failure(message: "the attestation is about run \(statement["predicate"]?["run_id"]?.stringValue ?? "?"), not \(r.runId)")
        }
        var attested: [String: String] = [:]
        for s in statement["subject"]?.arrayValue ?? [] {
            if let n = s["name"]?.stringValue, let d = s["digest"]?["sha256"]?.stringValue { attested[n] = d }
        }
        let recorded = Dictionary(r.outputs.map { ($0.name, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        guard attested == recorded else {
            throw Failure(message: "attestation of run \(r.runId): its subjects do not match the outputs recorded for the run")
        }
        for o in r.outputs where r.outputsEvictedAt == nil {
            do {
                _ = try store.readBlob(o.sha256)
            } catch {
                throw Failure(message: "output \(o.name) of run \(r.runId) no longer matches its attested sha256 \(o.sha256): \(error.message)")
            }
        }
    }
}

extension Attestation {
    /// What checking the attestations of the runs behind one target found.
    public struct Check: Sendable {
        /// Runs with a valid attestation (signature, statement and stored outputs all verified).
        public var verified: [String] = []
        /// Why each other run did not verify.
        public var failures: [(runId: String, reason: String)] = []
    }

    /// Checks every run that produced a target: the target is attested when any of them has a
    /// valid attestation (another run that wrote the same bytes unsigned does not spoil it).
    /// `envelope`: a file to verify instead of the ones kept in the store.
    public static func check(runs: [RunRecord], publicKeyPath: String, envelope: String?, store: Store) -> Check {
        var result = Check()
        for r in runs {
            let envelopes: [String]
            if let envelope {
                guard let text = try? String(contentsOfFile: envelope, encoding: .utf8) else {
                    result.failures.append((r.runId, "cannot read \(envelope)"))
                    continue
                }
                envelopes = [text]
            } else {
                envelopes = ((try? store.attestations(runId: r.runId)) ?? []).map(\.envelope)
            }
            guard !envelopes.isEmpty else {
                result.failures.append((r.runId, "no attestation; make one with `repro attest \(r.runId) --key KEY`"))
                continue
            }
            var ok = false
            var reason = ""
            for env in envelopes {
                do {
                    try verify(envelope: env, publicKeyPath: publicKeyPath, run: r, store: store)
                    ok = true
                    break
                } catch {
                    reason = "\(error)"
                }
            }
            if ok { result.verified.append(r.runId) } else { result.failures.append((r.runId, reason)) }
        }
        return result
    }
}
