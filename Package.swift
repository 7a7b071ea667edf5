// swift-tools-version: 6.2
import PackageDescription

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
        .systemLibrary(name: "CLibGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CReproSys"),
        // Skips libgit2's CA-bundle parse at init (see the file's comment); Linux only.
        .target(name: "CGitFastInit"),
        // libcurl through dlopen on first use (HTTP for object storage and REST backends), with
        // typed wrappers for its variadic setopt: not linked, so a cache hit never loads it.
        .target(name: "CCurl", linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "ReproKit",
            dependencies: [
                "CLibGit2", "CSQLite", "CZlib", "CReproSys", "CGitFastInit", "CCurl",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "repro",
            dependencies: [
                "ReproKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "repro-bench", dependencies: ["ReproKit"]),
        .testTarget(name: "ReproKitTests", dependencies: ["ReproKit", "repro"], exclude: ["Corpus"]),
    ],
    swiftLanguageModes: [.v6]
)
