import Foundation
import ReproSupport

/// One named backend from `backends:` in `.repro.yaml` / `.repro/config.yaml`: its name, its
/// type, and the typed settings that type reads (see `BackendKind`).
public struct BackendSettings: Sendable {
    public var name: String
    public var type: String
    /// Where it was configured (file:line), for messages.
    public var origin: String
    /// Set when the committed .repro.yaml names where its token goes and the user has not
    /// accepted that yet (`ProjectSecrets`): the backend is refused with this message.
    public var unaccepted: String?
    /// The settings of its type (`SlurmRestSettings`, `SlurmSettings`, ...).
    public var options: any BackendOptions

    package init(name: String, type: String, origin: String, unaccepted: String?, options: any BackendOptions) {
        self.name = name
        self.type = type
        self.origin = origin
        self.unaccepted = unaccepted
        self.options = options
    }

    package static let secretKeys: Set<String> = [
        "token", "password", "secret", "access_key", "secret_key", "access_key_id", "secret_access_key", "aws_access_key_id",
        "aws_secret_access_key", "session_token", "jwt",
    ]

    package static func parse(name: String, _ node: SpecNode) throws(ConfigError) -> BackendSettings {
        guard name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }), !name.isEmpty else {
            throw ConfigError(at: node.origin, "backend name '\(name)' may hold only letters, digits, '-' and '_'")
        }
        guard name != Backends.auto else {
            throw ConfigError(at: node.origin, "'auto' is reserved (backend: auto routes each run by its estimate); choose another name")
        }
        guard case .mapping(let pairs, _) = node else {
            throw ConfigError(at: node.origin, key: "backends.\(name)", "must be a mapping such as {type: slurm-rest, url: ..., staging: s3://...}")
        }
        guard let typeNode = pairs.first(where: { $0.key == "type" })?.value else {
            throw ConfigError(at: node.origin, key: "backends.\(name)", "needs a type: one of \(Backends.types.joined(separator: ", "))")
        }
        guard case .scalar(let type, _, _) = typeNode, !type.isEmpty else {
            throw ConfigError(at: typeNode.origin, key: "backends.\(name).type", "must be a single, non-empty value")
        }
        guard let kind = Backends.kind(type) else {
            throw ConfigError(at: typeNode.origin, key: "backends.\(name).type", "'\(type)' is unknown; use one of \(Backends.types.joined(separator: ", "))")
        }
        for (k, v) in pairs where secretKeys.contains(k.lowercased()) {
            throw ConfigError(
                "\(v.origin): backends.\(name).\(k): secrets do not belong in a config file (it is committed or copied); "
                    + "use token_env / token_file for a scheduler token, and the AWS environment or ~/.aws/credentials for storage")
        }
        let options = try kind.options(SettingsReader(name: name, type: type, node: node, pairs: pairs))
        return BackendSettings(name: name, type: type, origin: "\(node.origin)", unaccepted: nil, options: options)
    }
}
