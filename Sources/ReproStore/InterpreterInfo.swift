import Foundation
import ReproSupport

/// What actually runs a simulation written in Python: the real interpreter behind a shim or
/// wrapper (pyenv's `python3` is a bash script), its version, and the packages installed for it,
/// as `pip freeze` would list them.
public struct InterpreterInfo: Sendable, Equatable {
    package var language: String
    /// `sys.executable` as the process knows it: a venv's `bin/python`, not the base
    /// interpreter its symlink leads to (that one has other packages).
    package var path: String
    package var version: String
    package var implementation: String
    /// `name==version`, sorted case-insensitively.
    package var packages: [String]
    /// `sys.prefix`: the venv or conda environment in use, else the installation.
    package var prefix: String = ""
    /// `sys.base_prefix`: the installation a venv was made from (equal to `prefix` outside one).
    package var basePrefix: String = ""
    /// venv, conda or system.
    package var environmentKind: String = ""

    public init(
        language: String, path: String, version: String, implementation: String, packages: [String], prefix: String = "",
        basePrefix: String = "", environmentKind: String = ""
    ) {
        self.language = language
        self.path = path
        self.version = version
        self.implementation = implementation
        self.packages = packages
        self.prefix = prefix
        self.basePrefix = basePrefix
        self.environmentKind = environmentKind
    }

    /// Read back from a record, a manifest or the probe cache (packages only where present).
    public init?(json i: JSONValue) {
        guard let path = i["path"]?.stringValue else { return nil }
        self.init(
            language: i["language"]?.stringValue ?? "", path: path, version: i["version"]?.stringValue ?? "",
            implementation: i["implementation"]?.stringValue ?? "", packages: i["packages"]?.arrayValue?.compactMap(\.stringValue) ?? [],
            prefix: i["prefix"]?.stringValue ?? "", basePrefix: i["base_prefix"]?.stringValue ?? "",
            environmentKind: i["environment"]?.stringValue ?? "")
    }

    package var json: JSONValue {
        var o: [String: JSONValue] = [
            "language": .string(language), "path": .string(path), "version": .string(version), "implementation": .string(implementation),
        ]
        if !prefix.isEmpty {
            o["prefix"] = .string(prefix)
            o["base_prefix"] = .string(basePrefix)
            o["environment"] = .string(environmentKind)
        }
        return .object(o)
    }

    /// With the package list (what a manifest and the probe cache carry).
    package var jsonWithPackages: JSONValue {
        var o = json.objectValue ?? [:]
        o["packages"] = .array(packages.map { .string($0) })
        return .object(o)
    }

    /// The package list as the bytes of its blob (one line each).
    package var packagesText: String { packages.map { $0 + "\n" }.joined() }
}
