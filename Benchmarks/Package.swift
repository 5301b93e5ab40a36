// swift-tools-version: 6.2
// Benchmarks live in their own package so the main build stays light. Run with:
//   cd Benchmarks && swift run -c release fieldsync-bench [--scale N]
import Foundation
import PackageDescription

/// A path dependency's identity is its folder name, which differs between checkouts.
let main = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()

let package = Package(
    name: "FieldSyncBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "fieldsync-bench",
            dependencies: [
                .product(name: "FieldSyncCore", package: main),
                .product(name: "FieldSyncStore", package: main),
                .product(name: "FieldSyncProtocol", package: main),
                .product(name: "FieldSyncEd25519", package: main),
                .product(name: "FieldSyncClient", package: main),
                .product(name: "FieldSyncVault", package: main),
                .product(name: "FieldSyncBlobs", package: main),
                .product(name: "FieldSyncPostgres", package: main),
                .product(name: "FieldSyncServer", package: main),
                .product(name: "FieldSyncTestSupport", package: main),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        )
    ]
)
