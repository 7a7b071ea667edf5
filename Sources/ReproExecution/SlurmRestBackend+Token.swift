import Crypto
import Foundation
import ReproRemote
import ReproSupport

/// How a slurm-rest backend authenticates: where its JWT comes from (an environment variable
/// or a file read at each request, a command, or minted from the cluster's key) and how it is
/// sent (slurmrestd's user-name and token headers, the token header alone, or a Bearer header,
/// as AWS PCS documents).
extension SlurmRestBackend {
    /// The headers a request carries for `token`.
    func authHeaders(_ token: String) -> [(name: String, value: String)] {
        switch settings.auth {
        case .userToken: return [("X-SLURM-USER-NAME", settings.user), ("X-SLURM-USER-TOKEN", token)]
        case .token: return [("X-SLURM-USER-TOKEN", token)]
        case .bearer: return [("Authorization", "Bearer " + token)]
        }
    }

    /// The JWT for the next request. From `token_env`/`token_file`: read at each request
    /// (tokens are short-lived and replaced while a sweep runs). From `token_command` or
    /// `token_key_file`: made once and made again a minute before it expires, so a long sweep
    /// outlives any one token.
    func token() throws(RemoteError) -> String {
        if let made = madeToken, made.renewAt > Clock.now() { return made.value }
        var token: String?
        var source = ""
        if let name = settings.tokenEnv {
            source = "$\(name)"
            token = environment[name]
        }
        if token?.isEmpty ?? true, let file = settings.tokenFile {
            let path = expandHome(file)
            source = path
            token = (try? FileIO.readAll(path, limit: 1 << 16)).map { String(decoding: $0, as: UTF8.self) }
        }
        var made = false
        if token?.isEmpty ?? true, let argv = settings.tokenCommand {
            source = "token_command (\(argv.joined(separator: " ")))"
            token = try runTokenCommand(argv)
            made = true
        }
        if token?.isEmpty ?? true, let keyFile = settings.tokenKeyFile {
            source = "a token minted with \(expandHome(keyFile))"
            token = try mint(keyFile: expandHome(keyFile))
            made = true
        }
        var t = (token ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        if t.hasPrefix("SLURM_JWT=") { t = String(t.dropFirst(10)) }
        guard !t.isEmpty else {
            throw RemoteError(
                "no SLURM token for backend '\(name)': \(source.isEmpty ? "set token_env, token_file, token_command or token_key_file" : "\(source) is empty or unset"); "
                    + "make one on the cluster with `scontrol token username=\(settings.user) lifespan=86400`", kind: .auth)
        }
        if !settings.user.isEmpty, let sun = SlurmREST.tokenUser(t), sun != settings.user {
            throw RemoteError(
                "the SLURM token in \(source) is for user \(sun), but backend '\(name)' runs jobs as \(settings.user); make one with "
                    + "`scontrol token username=\(settings.user) lifespan=86400`, or set user: \(sun)", kind: .auth)
        }
        let exp = SlurmREST.tokenExpiry(t)
        if let exp, exp < Clock.now() {
            throw RemoteError(
                "the SLURM token in \(source) expired at \(Clock.iso8601(exp)); make a new one with "
                    + "`scontrol token username=\(settings.user) lifespan=86400` and set it again", kind: .auth)
        }
        // A made token is used until a minute before it expires (without an expiry: for as
        // long as this backend lives).
        if made { madeToken = (t, exp.map { $0 - 60 } ?? .infinity) }
        return t
    }

    func expandHome(_ path: String) -> String { path.hasPrefix("~/") ? (environment["HOME"] ?? "") + path.dropFirst(1) : path }

    /// Runs `token_command` and takes its output (a bare token or `SLURM_JWT=...`).
    func runTokenCommand(_ argv: [String]) throws(RemoteError) -> String {
        let r: CommandOutput.Result
        do { r = try CommandOutput.run(argv, environment: environment, timeout: 60) } catch {
            throw RemoteError("token_command of backend '\(name)' could not run: \(error.message)", kind: .auth)
        }
        guard r.status == 0 else {
            throw RemoteError(
                "token_command of backend '\(name)' (\(argv.joined(separator: " "))) exited \(r.status): \(Terminal.clean(String(r.stderr.prefix(300))))",
                kind: .auth)
        }
        return r.stdout
    }

    /// An HS256 JWT as `scontrol token` makes it (claims `sun`, `iat`, `exp`), signed with the
    /// cluster's `jwt_key` (AWS PCS keeps it in Secrets Manager: fetch it to a file of mode 0600),
    /// with the POSIX identity claims AWS PCS requires when `token_uid` is set.
    func mint(keyFile: String) throws(RemoteError) -> String {
        let key: [UInt8]
        do { key = try FileIO.readAll(keyFile, limit: 1 << 16) } catch {
            throw RemoteError("token_key_file of backend '\(name)': cannot read \(keyFile): \(error.message)", kind: .auth)
        }
        guard !settings.user.isEmpty else {
            throw RemoteError("backend '\(name)' mints tokens from token_key_file and needs user: the user the token is for", kind: .auth)
        }
        return SlurmREST.mintToken(user: settings.user, key: key, now: Clock.now(), lifespan: settings.tokenLifespan, identity: settings.tokenIdentity)
    }
}

/// The POSIX identity a minted token carries for clusters whose controller has no user
/// database to look the user up in (AWS PCS: `uid`, `gid`, and `id.gids`).
public struct PosixIdentity: Sendable, Equatable {
    public var uid: Int64
    public var gid: Int64
    /// Every group the user is in (the primary one too).
    public var gids: [Int64]
}

extension SlurmREST {
    /// An HS256 JWT with the claims slurmctld's auth/jwt plugin reads.
    public static func mintToken(user: String, key: [UInt8], now: Double, lifespan: Double, identity: PosixIdentity? = nil) -> String {
        func b64(_ bytes: some Sequence<UInt8>) -> String {
            Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
        }
        let iat = Int64(now.rounded(.down))
        let header = b64(JSONValue.object(["alg": "HS256", "typ": "JWT"]).canonical.utf8)
        var fields: [String: JSONValue] = ["sun": .string(user), "iat": .int(iat), "exp": .int(iat + Int64(lifespan.rounded()))]
        if let identity {
            fields["uid"] = .int(identity.uid)
            fields["gid"] = .int(identity.gid)
            fields["id"] = ["gids": .array(identity.gids.map { .int($0) })]
        }
        let claims = b64(JSONValue.object(fields).canonical.utf8)
        let mac = HMAC<SHA256>.authenticationCode(for: Array((header + "." + claims).utf8), using: SymmetricKey(data: key))
        return header + "." + claims + "." + b64(Array(mac))
    }
}
