// swift-tools-version: 6.2
import PackageDescription

/// On Linux libgit2, SQLite and zlib are linked from Debian's static archives (libgit2-dev's
/// dependencies ship them): loading 22 shared libraries (libgit2 pulls in krb5, ssh2, mbedTLS,
/// OpenSSL, pcre2...) was a large part of every repro process's start. The archives' symbols are kept
/// out of the dynamic symbol table (--exclude-libs), so libcurl, loaded later by dlopen, binds to
/// the system's own OpenSSL, never to the copy libssh2 brought in. CGitFastInit replaces (by
/// --wrap) mbedTLS's CA-bundle loader, entropy pool and random-generator seeding and libssh2's
/// start-up, and defines the GSS-API calls libgit2's HTTP Negotiate auth makes: repro only opens
/// local repositories. The executable is not position-independent: some 100,000 relative
/// relocations fewer at every start; its own image loses address
/// randomization, while libraries, heap and stack keep it. On macOS the dynamic libraries are
/// used as they are.
let staticArchives = ["git2", "mbedtls", "mbedx509", "mbedcrypto", "http_parser", "ssh2", "crypto", "pcre2-8", "sqlite3", "z"]
let staticCLibraries: [LinkerSetting] =
    staticArchives.map { .linkedLibrary(":lib\($0).a", .when(platforms: [.linux])) }
    + ["git2", "sqlite3", "z"].map { .linkedLibrary($0, .when(platforms: [.macOS])) }
    // Homebrew's prefix on Apple silicon (pkg-config used to give it; /usr/local is searched anyway).
    + [.unsafeFlags(["-L/opt/homebrew/lib"], .when(platforms: [.macOS]))]
    + [
        .unsafeFlags(
            [
                "-Xlinker", "--exclude-libs=ALL",
                "-Xlinker", "--wrap=mbedtls_x509_crt_parse_file",
                "-Xlinker", "--wrap=mbedtls_ctr_drbg_seed",
                "-Xlinker", "--wrap=mbedtls_entropy_init",
                "-Xlinker", "--wrap=libssh2_init",
                "-Xlinker", "-no-pie",
                // The static runtime's link arguments export every symbol of the executable
                // (thousands of ours), which the backtracer's start-up dladdr then scans and the
                // dynamic loader hashes against: nothing looks them up by name.
                "-Xlinker", "--no-export-dynamic",
                // lld: it can lay out functions in a given order (below), and links faster.
                "-use-ld=lld",
            ], .when(platforms: [.linux])),
        // The code repro runs in everyday commands is laid out first and together
        // (bench/hot-symbols.sh says why and rewrites the list): an installed binary's code is
        // mapped in large folios, and a long sweep keeps far less code resident (bench/targets.sh
        // reports its peak memory). Names no longer in the binary are ignored.
        .unsafeFlags(
            [
                "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/bench/hot-symbols.txt",
                "-Xlinker", "--no-warn-symbol-ordering",
            ], .when(platforms: [.linux], configuration: .release)),
    ]

// Homebrew's headers on Apple silicon.
let macOSIncludes: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/opt/homebrew/include"], .when(platforms: [.macOS]))]

let package = Package(
    name: "repro",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "repro", targets: ["repro"]),
        .library(name: "ReproKit", targets: ["ReproKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.0.0"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        // C libraries, each behind a small system-library target.
        // The modulemaps link nothing: ReproKit's linker settings below say how (static on Linux).
        .systemLibrary(name: "CLibGit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CReproSys"),
        // Skips libgit2's CA-bundle parse at init (see the file's comment); Linux only.
        .target(name: "CGitFastInit"),
        // libcurl through dlopen on first use (HTTP for object storage and REST backends), with
        // typed wrappers for its variadic setopt: not linked, so a cache hit never loads it.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl")]),
        // Layers, each a module so the compiler holds the order (a lower one never imports a
        // higher one); `package` is what the next layer may use, `public` what the CLI's
        // ReproKit API hands out.
        // Files, JSON, YAML nodes with their place, hashing, errors, durations, processes' small helpers.
        .target(
            name: "ReproSupport",
            dependencies: ["CReproSys", .product(name: "Crypto", package: "swift-crypto"), .product(name: "Yams", package: "Yams")],
            swiftSettings: macOSIncludes),
        // Reading repositories (libgit2): commits, trees, status, archives.
        .target(name: "ReproGit", dependencies: ["ReproSupport", "CLibGit2", "CGitFastInit"], swiftSettings: macOSIncludes),
        // HTTP over libcurl, request signing (SigV4, Shared Key), and object storage (S3, Azure
        // Blob) over that one transport.
        .target(
            name: "ReproRemote",
            dependencies: ["ReproSupport", "CCurl", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: macOSIncludes),
        // The run store: SQLite, blobs, records, cache states.
        .target(
            name: "ReproStore",
            dependencies: ["ReproSupport", "ReproGit", "CSQLite", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: macOSIncludes),
        // Backends: the protocol, one descriptor per kind, the registry, and the executors
        // (local processes, sbatch, slurmrestd, AWS Batch, Azure Batch) with their staging.
        .target(
            name: "ReproExecution",
            dependencies: [
                "ReproSupport", "ReproGit", "ReproRemote", "ReproStore", "CReproSys", "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: macOSIncludes),
        // Specs, identities, runs, sweeps, verification, the team cache, reports.
        .target(
            name: "ReproKit",
            dependencies: [
                "ReproSupport", "ReproGit", "ReproRemote", "ReproStore", "ReproExecution",
                "CLibGit2", "CSQLite", "CZlib", "CReproSys", "CGitFastInit", "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: macOSIncludes,
            linkerSettings: staticCLibraries
        ),
        .executableTarget(
            name: "repro",
            dependencies: [
                "ReproKit", "ReproSupport", "ReproGit", "ReproRemote", "ReproStore", "ReproExecution",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "repro-bench", dependencies: ["ReproKit", "ReproSupport", "ReproStore"]),
        // Test doubles for paths a real backend reaches only rarely (see ScriptedBackend).
        .target(name: "ReproTestSupport", dependencies: ["ReproKit", "ReproSupport", "ReproStore", "ReproExecution", "ReproRemote"], path: "Tests/ReproTestSupport"),
        .testTarget(
            name: "ReproKitTests", dependencies: [
                "ReproKit", "ReproSupport", "ReproGit", "ReproRemote", "ReproStore", "ReproExecution", "ReproTestSupport", "repro",
            ],
            exclude: ["Corpus"]),
    ],
    swiftLanguageModes: [.v6]
)

