/// Secrets kept out of what repro prints: a password in a URL (`https://admin:pw@host`) and
/// a signed URL's query string never reach a terminal, a log or an error message.
package enum Redact {
    /// `url` with the password of its user info replaced by `***` (the user name stays: it
    /// helps tell two configurations apart). Text that is not a URL comes back unchanged.
    package static func url(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        let info = rest[..<at]
        guard let colon = info.firstIndex(of: ":") else { return url }
        return String(url[..<scheme.upperBound]) + String(info[..<colon]) + ":***" + String(rest[at...])
    }

    /// Whether `url` goes in the clear to another machine: `http://` to a host that is not
    /// loopback. A token must never travel so.
    package static func isPlainRemoteHTTP(_ url: String) -> Bool {
        guard url.lowercased().hasPrefix("http://") else { return false }
        var host = url.dropFirst(7).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        if let at = host.lastIndex(of: "@") { host = host[host.index(after: at)...] }
        let name: Substring
        if host.hasPrefix("[") {
            name = host.dropFirst().prefix { $0 != "]" }
        } else {
            name = host.prefix { $0 != ":" }
        }
        let lower = name.lowercased()
        return !(lower == "localhost" || lower.hasPrefix("127.") || lower == "::1" || lower.hasSuffix(".localhost"))
    }
}
