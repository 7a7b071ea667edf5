import Foundation

/// Settings from `.repro/config.yaml` (all optional):
///
/// ```yaml
/// cache:
///   max_age: 30d     # entries older than this are not served and count as expired
/// ```
public struct StoreConfig: Sendable {
    /// Seconds; the seed ADR's 30-day validity by default.
    public var maxAge: Double = 30 * 86400

    public init() {}

    public static func load(storeRoot: String) throws(ConfigError) -> StoreConfig {
        let path = storeRoot + "/config.yaml"
        guard let data = FileManager.default.contents(atPath: path) else { return StoreConfig() }
        let text = String(decoding: data, as: UTF8.self)
        let root = try SpecNode.parse(text, file: path)
        var config = StoreConfig()
        guard case .mapping(let pairs, _) = root else {
            throw ConfigError("\(root.origin): the store config must be a mapping with a `cache:` section")
        }
        for (key, value) in pairs {
            switch key {
            case "cache":
                guard case .mapping(let cachePairs, _) = value else {
                    throw ConfigError("\(value.origin): cache must be a mapping such as {max_age: 30d}")
                }
                for (k, v) in cachePairs {
                    guard k == "max_age" else {
                        throw ConfigError("\(v.origin): unknown key 'cache.\(k)'; known: cache.max_age")
                    }
                    guard case .scalar(let text, _, _) = v, let seconds = DurationText.seconds(text) else {
                        throw ConfigError("\(v.origin): cache.max_age must be a duration such as 30d, 12h or 90m")
                    }
                    config.maxAge = seconds
                }
            default:
                throw ConfigError("\(value.origin): unknown key '\(key)' in the store config; known: cache")
            }
        }
        return config
    }
}
