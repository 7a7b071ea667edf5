import Crypto
import Foundation
import ReproSupport

/// One named profile of the shared files: `[NAME]` in `~/.aws/credentials` over `[profile
/// NAME]` (`[default]`) in `~/.aws/config`, as the SDKs merge them; `[sso-session NAME]` for
/// SSO. Resolves the profile's own credentials (role, web identity, SSO, keys, process).
struct AWSProfile {
    let name: String
    let settings: AWSSettings
    let credentialsFile: String
    let configFile: String
    private let fromCredentials: [String: String]
    private let fromConfig: [String: String]
    private let config: [String: [String: String]]

    init(name: String, settings: AWSSettings) {
        self.name = name
        self.settings = settings
        credentialsFile = settings.environment["AWS_SHARED_CREDENTIALS_FILE"] ?? settings.home + "/.aws/credentials"
        configFile = settings.environment["AWS_CONFIG_FILE"] ?? settings.home + "/.aws/config"
        config = AWSSettings.ini(configFile)
        fromCredentials = AWSSettings.ini(credentialsFile)[name] ?? [:]
        fromConfig = (name == "default" ? config["default"] : config["profile " + name]) ?? [:]
    }

    var exists: Bool { !fromCredentials.isEmpty || !fromConfig.isEmpty }

    func value(_ key: String) -> String? {
        (fromCredentials[key] ?? fromConfig[key]).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The static keys written in the profile, if any.
    var keys: AWSCredentials? {
        guard let id = value("aws_access_key_id"), let secret = value("aws_secret_access_key") else { return nil }
        return AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: value("aws_session_token"))
    }

    /// The profile's credentials in botocore's order; nil when it names no source.
    func credentials(depth: Int) throws(RemoteError) -> AWSCredentials? {
        guard depth < 8 else {
            throw RemoteError("profile '\(name)': source_profile chains more than 8 deep (a loop?); check \(configFile)", kind: .auth)
        }
        if let role = value("role_arn") {
            if let m = value("mfa_serial") {
                throw RemoteError(
                    "profile '\(name)' assumes \(role) with MFA (\(m)), which needs a code typed in: repro cannot ask for one. Run "
                        + "`aws sts assume-role ... --serial-number \(m) --token-code CODE` and export the credentials, or use a profile without mfa_serial",
                    kind: .auth)
            }
            if let file = value("web_identity_token_file") {
                return try settings.webIdentity(tokenFile: file, roleArn: role, sessionName: value("role_session_name"), profile: self)
            }
            return try settings.assumeRole(self, roleArn: role, source: try roleSource(depth: depth))
        }
        if value("sso_session") != nil || value("sso_start_url") != nil { return try sso() }
        if let k = keys { return k }
        if let command = value("credential_process") { return try process(command) }
        return nil
    }

    /// What a role is assumed with: `source_profile`'s credentials (its keys when it is this
    /// profile, as the SDKs do), or `credential_source`.
    func roleSource(depth: Int) throws(RemoteError) -> AWSCredentials {
        if let source = value("source_profile") {
            let p = AWSProfile(name: source, settings: settings)
            if source == name, let k = keys { return k }
            guard p.exists else {
                throw RemoteError("profile '\(name)': source_profile '\(source)' is not in \(configFile) or \(credentialsFile)", kind: .auth)
            }
            guard let c = try p.credentials(depth: depth + 1) else {
                throw RemoteError("profile '\(name)': source_profile '\(source)' has no credentials (keys, a role, SSO or credential_process)", kind: .auth)
            }
            return c
        }
        switch value("credential_source") {
        case "Environment":
            guard let id = settings.nonEmpty("AWS_ACCESS_KEY_ID"), let secret = settings.nonEmpty("AWS_SECRET_ACCESS_KEY") else {
                throw RemoteError("profile '\(name)': credential_source Environment, but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set", kind: .auth)
            }
            return AWSCredentials(accessKeyId: id, secretAccessKey: secret, sessionToken: settings.nonEmpty("AWS_SESSION_TOKEN"))
        case "EcsContainer":
            guard let c = try settings.containerCredentials() else {
                throw RemoteError("profile '\(name)': credential_source EcsContainer, but AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI are not set", kind: .auth)
            }
            return c
        case "Ec2InstanceMetadata":
            guard let c = try settings.instanceCredentials() else {
                throw RemoteError("profile '\(name)': credential_source Ec2InstanceMetadata, but the instance metadata service is disabled", kind: .auth)
            }
            return c
        case let other?:
            throw RemoteError("profile '\(name)': credential_source '\(other)' is not one of Environment, EcsContainer, Ec2InstanceMetadata", kind: .auth)
        case nil:
            throw RemoteError("profile '\(name)' has role_arn but neither source_profile nor credential_source; add one (see `aws configure`)", kind: .auth)
        }
    }

    // MARK: - SSO

    /// IAM Identity Center: the access token `aws sso login` cached (named by the SHA-1 of the
    /// session name, or of the start URL for legacy profiles), exchanged at the portal's
    /// GetRoleCredentials for the account and role of the profile.
    func sso() throws(RemoteError) -> AWSCredentials {
        let session = value("sso_session")
        let block = session.flatMap { config["sso-session " + $0] } ?? [:]
        let login = "`aws sso login --profile \(name)`"
        guard let account = value("sso_account_id"), let role = value("sso_role_name") else {
            throw RemoteError("profile '\(name)' uses SSO but lacks sso_account_id or sso_role_name in \(configFile) (`aws configure sso` writes them)", kind: .auth)
        }
        guard let region = block["sso_region"] ?? value("sso_region") else {
            throw RemoteError("profile '\(name)' uses SSO but no sso_region is set (in its sso-session block or the profile)", kind: .auth)
        }
        let cacheName = session ?? value("sso_start_url") ?? ""
        let digest = Insecure.SHA1.hash(data: Array(cacheName.utf8)).map { String(format: "%02x", $0) }.joined()
        let dir = settings.environment["AWS_SSO_CACHE_DIR"] ?? settings.home + "/.aws/sso/cache"
        let file = dir + "/" + digest + ".json"
        guard let bytes = try? FileIO.readAll(file, limit: 1 << 20), let doc = try? JSONParser.parse(bytes),
            let token = doc["accessToken"]?.stringValue
        else {
            throw RemoteError("profile '\(name)' uses SSO and has no cached login (\(file)): run \(login)", kind: .auth)
        }
        if let exp = doc["expiresAt"]?.stringValue.flatMap(Clock.parseISO8601), exp <= Clock.now() {
            throw RemoteError("the SSO login of profile '\(name)' expired at \(doc["expiresAt"]?.stringValue ?? "?"): run \(login)", kind: .auth)
        }
        let endpoint = settings.nonEmpty("AWS_ENDPOINT_URL_SSO") ?? "https://portal.sso.\(region).amazonaws.com"
        return try settings.cached("sso:\(name):\(account):\(role):\(Hashing.sha256Hex(token).prefix(16))") { () throws(RemoteError) -> AWSCredentials in
            let url = endpoint + "/federation/credentials?account_id=\(SigV4.encode(account))&role_name=\(SigV4.encode(role))"
            var req = HTTPRequest(method: "GET", url: url, headers: [("x-amz-sso_bearer_token", token)], body: [])
            req.timeout = 30
            let r = try RetryPolicy().run { (_: Int) throws(RemoteError) -> HTTPResponse in try HTTPClient.shared.perform(req) }
            guard r.status == 200 else {
                let kind: RemoteError.Kind = r.status == 401 || r.status == 403 ? .auth : (r.status >= 500 ? .server : .client)
                throw RemoteError(
                    "SSO GetRoleCredentials for profile '\(name)' (account \(account), role \(role)) answered HTTP \(r.status)"
                        + (kind == .auth ? ": the login expired or the role is not assigned to you; run \(login)" : ""),
                    kind: kind, httpStatus: r.status)
            }
            guard let rc = (try? JSONParser.parse(r.body))?["roleCredentials"], let id = rc["accessKeyId"]?.stringValue,
                let secret = rc["secretAccessKey"]?.stringValue
            else { throw RemoteError("SSO GetRoleCredentials answered without roleCredentials", kind: .server) }
            return AWSCredentials(
                accessKeyId: id, secretAccessKey: secret, sessionToken: rc["sessionToken"]?.stringValue,
                expiration: rc["expiration"]?.numberValue.map { $0 / 1000 })
        }
    }

    // MARK: - credential_process

    /// An external program that prints the credentials as JSON (`Version: 1`); split as a
    /// shell would split words, run without a shell.
    func process(_ command: String) throws(RemoteError) -> AWSCredentials {
        try settings.cached("process:\(name):\(command)") { () throws(RemoteError) -> AWSCredentials in
            guard let argv = try? ShellWords.split(command), !argv.isEmpty else {
                throw RemoteError("profile '\(name)': credential_process '\(command)' is not a command line", kind: .auth)
            }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = argv
            p.environment = settings.environment
            let out = Pipe()
            let err = Pipe()
            p.standardOutput = out
            p.standardError = err
            do { try p.run() } catch {
                throw RemoteError("profile '\(name)': credential_process '\(argv[0])' could not start: \(error)", kind: .auth)
            }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            let errText = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw RemoteError(
                    "profile '\(name)': credential_process '\(argv[0])' exited \(p.terminationStatus): \(errText.trimmingCharacters(in: .whitespacesAndNewlines).prefix(300))",
                    kind: .auth)
            }
            guard let c = AWSSettings.jsonCredentials(Array(data)) else {
                throw RemoteError(
                    "profile '\(name)': credential_process '\(argv[0])' printed no AccessKeyId and SecretAccessKey (it must print JSON with Version 1)",
                    kind: .auth)
            }
            return c
        }
    }
}
