import Foundation
import ReproSupport

/// `s3://bucket/prefix`: where a backend stages tasks or a team keeps its cache.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    package var bucket: String
    /// No leading or trailing slash; may be empty.
    package var prefix: String
    /// `s3`, or `az` for an Azure Blob container.
    package var scheme = "s3"

    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix.split(separator: "/").joined(separator: "/")
    }

    /// `allowBlob`: an `az://CONTAINER/PREFIX` (an Azure Blob container) is taken too.
    public init(parsing text: String, what: String, allowBlob: Bool = false) throws(ConfigError) {
        if allowBlob, text.hasPrefix("az://") {
            let rest = text.dropFirst(5)
            let container = String(rest.prefix { $0 != "/" })
            // Blob's container names: 3 to 63 lower-case letters, digits and single hyphens.
            guard container.count >= 3, container.count <= 63, !container.hasPrefix("-"), !container.hasSuffix("-"), !container.contains("--"),
                container.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") })
            else {
                throw ConfigError("\(what) '\(text)': '\(container)' is not a valid Blob container name (3 to 63 lower-case letters, digits, single '-')")
            }
            self.init(bucket: container, prefix: String(rest.dropFirst(container.count)))
            scheme = "az"
            return
        }
        guard text.hasPrefix("s3://") else {
            throw ConfigError(
                "\(what) '\(text)' is not an s3:// URL\(allowBlob ? " or an az:// container" : ""); write it like s3://my-bucket/repro/staging")
        }
        let rest = text.dropFirst(5)
        let bucket = String(rest.prefix { $0 != "/" })
        guard bucket.count >= 3, bucket.count <= 63,
            bucket.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") })
        else {
            throw ConfigError(
                "\(what) '\(text)': '\(bucket)' is not a valid bucket name (3 to 63 lower-case letters, digits, '-' or '.')")
        }
        self.init(bucket: bucket, prefix: String(rest.dropFirst(bucket.count)))
    }

    package func key(_ rel: String) -> String { prefix.isEmpty ? rel : prefix + "/" + rel }
    /// The inverse of `key`: an object key relative to the prefix.
    package func relative(_ key: String) -> String { prefix.isEmpty ? key : String(key.dropFirst(prefix.count + 1)) }
    public var description: String { "\(scheme)://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix) }
}

/// What `ObjectStore.getCapped` found.
package enum CappedObject: Sendable {
    case missing, tooLarge
    case bytes([UInt8])
}

/// Object storage as staging uses it: S3 (`S3Client`) and Azure Blob Storage (`AzureBlobClient`).
/// `bucket` is an S3 bucket or a Blob container; `presign` makes a URL its holder can GET or PUT
/// with no credentials of their own (an S3 presigned URL, an Azure SAS).
public protocol ObjectStore: Sendable {
    @discardableResult
    func put(_ bytes: [UInt8], bucket: String, key: String, ifNoneMatch: Bool) throws(RemoteError) -> Bool
    @discardableResult
    func upload(file path: String, bucket: String, key: String, ifNoneMatch: Bool) throws(RemoteError) -> Bool
    func get(bucket: String, key: String) throws(RemoteError) -> [UInt8]
    /// The object's bytes (nil when there is none), refusing more than `maxBytes`.
    func getIfPresent(bucket: String, key: String, maxBytes: Int64) throws(RemoteError) -> [UInt8]?
    /// Downloads into a file, stopping (and removing it) past `maxBytes`.
    func downloadIfPresent(bucket: String, key: String, to path: String, maxBytes: Int64) throws(RemoteError) -> Bool
    func head(bucket: String, key: String) throws(RemoteError) -> S3Object?
    func delete(bucket: String, key: String) throws(RemoteError)
    func list(bucket: String, prefix: String, pageSize: Int) throws(RemoteError) -> [S3Object]
    func presign(_ method: String, bucket: String, key: String, expires: Int) throws(RemoteError) -> String
    /// When the credentials presigned URLs are signed with expire (nil: not known to).
    func credentialExpiry() -> Double?
    /// Checks credentials are there (before anything is recorded).
    func checkCredentials() throws(RemoteError)
}

extension ObjectStore {
    package func credentialExpiry() -> Double? { nil }

    @discardableResult
    package func put(_ bytes: [UInt8], bucket: String, key: String) throws(RemoteError) -> Bool {
        try put(bytes, bucket: bucket, key: key, ifNoneMatch: false)
    }
    @discardableResult
    package func upload(file path: String, bucket: String, key: String) throws(RemoteError) -> Bool {
        try upload(file: path, bucket: bucket, key: key, ifNoneMatch: false)
    }
    package func list(bucket: String, prefix: String) throws(RemoteError) -> [S3Object] {
        try list(bucket: bucket, prefix: prefix, pageSize: 1000)
    }
    package func getIfPresent(bucket: String, key: String) throws(RemoteError) -> [UInt8]? {
        try getIfPresent(bucket: bucket, key: key, maxBytes: HTTPRequest.inMemoryLimit)
    }
    package func downloadIfPresent(bucket: String, key: String, to path: String) throws(RemoteError) -> Bool {
        try downloadIfPresent(bucket: bucket, key: key, to: path, maxBytes: Int64.max)
    }

    /// An object that may be at most `maxBytes` (a manifest): a larger one is `.tooLarge`, a
    /// finding about that object, not an error of the command reading it.
    package func getCapped(bucket: String, key: String, maxBytes: Int64) throws(RemoteError) -> CappedObject {
        do {
            return try getIfPresent(bucket: bucket, key: key, maxBytes: maxBytes).map(CappedObject.bytes) ?? .missing
        } catch {
            guard error.kind == .integrity else { throw error }
            return .tooLarge
        }
    }

    /// Checks the location can be written, read and deleted (for `repro backends`).
    package func probe(_ loc: S3Location) throws(RemoteError) {
        let key = loc.key("probe/\(HostInfo.newRunId())")
        try put(Array("repro probe\n".utf8), bucket: loc.bucket, key: key)
        _ = try get(bucket: loc.bucket, key: key)
        try delete(bucket: loc.bucket, key: key)
    }
}

/// An object's metadata (HEAD, list).
public struct S3Object: Sendable {
    package var key: String
    package var size: Int64
    package var etag: String?
    package var lastModified: String?
}
