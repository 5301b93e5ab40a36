// swift-tools-version: 6.2
import PackageDescription

/// One settings array for every target (see shared STYLE.md, "One settings array").
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny")
]

let package = Package(
    name: "FieldSync",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "fieldsync", targets: ["fieldsync"]),
        .library(name: "FieldSyncCore", targets: ["FieldSyncCore"]),
        .library(name: "FieldSyncStore", targets: ["FieldSyncStore"]),
        .library(name: "FieldSyncProtocol", targets: ["FieldSyncProtocol"]),
        .library(name: "FieldSyncEd25519", targets: ["FieldSyncEd25519"]),
        .library(name: "FieldSyncServer", targets: ["FieldSyncServer"]),
        .library(name: "FieldSyncClient", targets: ["FieldSyncClient"]),
        .library(name: "FieldSyncVault", targets: ["FieldSyncVault"]),
        .library(name: "FieldSyncBlobs", targets: ["FieldSyncBlobs"]),
        .library(name: "FieldSyncPostgres", targets: ["FieldSyncPostgres"]),
        .library(name: "FieldSyncConsole", targets: ["FieldSyncConsole"]),
        .library(name: "FieldSyncTestSupport", targets: ["FieldSyncTestSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/swift-server/async-http-client", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", exact: "2.0.1"),
        // Already dependencies of hummingbird and async-http-client; named for TLS and the header name.
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types", exact: "1.8.0"),
        // zlib for ByteBuffer: gzip-compressed pull responses for documenters on weak links.
        .package(url: "https://github.com/adam-fowler/compress-nio", exact: "1.5.0"),
        // The central node on PostgreSQL (issue 17): PostgresClient directly, no ORM.
        .package(url: "https://github.com/vapor/postgres-nio", exact: "1.33.2"),
    ],
    targets: [
        // Pure core: record model, version vectors, merge, validation, canonical JSON. No I/O, no Foundation.
        .target(name: "FieldSyncCore", swiftSettings: swiftSettings),
        // Ed25519 checks of many signatures by one key (tabulated key multiples); answers as BoringSSL does.
        .target(
            name: "FieldSyncEd25519",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // Wire messages (sync protocol and bundle files) and their versioning.
        .target(
            name: "FieldSyncProtocol",
            dependencies: [
                "FieldSyncCore", "FieldSyncEd25519",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Attachments: manifests, chunking, hashing, the BlobStorage protocol and its filesystem implementation.
        .target(
            name: "FieldSyncBlobs",
            dependencies: ["FieldSyncCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The replica in SQLite: schema, migrations, applying revisions, queries.
        .target(
            name: "FieldSyncStore",
            dependencies: [
                "FieldSyncCore",
                "FieldSyncProtocol",
                "FieldSyncBlobs",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                // AES as a permutation of record ids (one block, no mode) for the sealed columns.
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Keys for encrypted replicas: the key file, passphrases (scrypt), the unlock agent, sealed bundles.
        // prctl and SO_PEERCRED, which Swift's Glibc module does not reach.
        .target(name: "CFieldSyncSystem"),
        .target(
            name: "FieldSyncVault",
            dependencies: [
                "FieldSyncCore", "FieldSyncStore", "CFieldSyncSystem",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The central node: a Hummingbird application built by a function.
        .target(
            name: "FieldSyncServer",
            dependencies: [
                "FieldSyncCore", "FieldSyncProtocol", "FieldSyncBlobs",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // `fieldsync console`: a local web interface over the user's own replica (127.0.0.1 only).
        .target(
            name: "FieldSyncConsole",
            dependencies: [
                "FieldSyncCore", "FieldSyncProtocol", "FieldSyncStore", "FieldSyncBlobs",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The central node's storage on PostgreSQL, shared by several `serve` instances.
        .target(
            name: "FieldSyncPostgres",
            dependencies: [
                "FieldSyncCore", "FieldSyncProtocol", "FieldSyncBlobs",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The sync driver and its HTTP transport.
        .target(
            name: "FieldSyncClient",
            dependencies: [
                "FieldSyncCore", "FieldSyncStore", "FieldSyncProtocol", "FieldSyncBlobs",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Commands; no @main here so tests can parse and run commands in-process.
        .target(
            name: "FieldSyncCLI",
            dependencies: [
                "FieldSyncCore", "FieldSyncStore", "FieldSyncProtocol", "FieldSyncServer", "FieldSyncClient", "FieldSyncVault",
                "FieldSyncBlobs", "FieldSyncPostgres", "FieldSyncConsole",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(name: "fieldsync", dependencies: ["FieldSyncCLI"], swiftSettings: swiftSettings),
        // Fixtures shared by every test target: temp replicas, a live server on port 0, the built binary.
        .target(
            name: "FieldSyncTestSupport",
            dependencies: [
                "CFieldSyncSystem", "FieldSyncCore", "FieldSyncStore", "FieldSyncProtocol", "FieldSyncServer", "FieldSyncClient", "FieldSyncBlobs",
                "FieldSyncPostgres",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // A seeded generator shared by the property and reliability tests (no dependencies).
        .target(name: "FieldSyncSeededRandom", swiftSettings: swiftSettings),
        .testTarget(
            name: "FieldSyncCoreTests",
            dependencies: [
                "FieldSyncCore", "FieldSyncSeededRandom",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FieldSyncEd25519Tests",
            dependencies: ["FieldSyncEd25519", "FieldSyncSeededRandom", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FieldSyncStoreTests",
            dependencies: ["FieldSyncStore", "FieldSyncTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FieldSyncBlobsTests",
            dependencies: ["FieldSyncBlobs", "FieldSyncProtocol", "FieldSyncTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FieldSyncVaultTests",
            dependencies: ["FieldSyncVault", "FieldSyncTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FieldSyncProtocolTests",
            dependencies: ["FieldSyncProtocol", "FieldSyncTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FieldSyncServerTests",
            dependencies: [
                "FieldSyncServer", "FieldSyncClient", "FieldSyncTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FieldSyncConsoleTests",
            dependencies: [
                "FieldSyncConsole", "FieldSyncTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        // One conformance suite for the central node's storage, run against SQLite and PostgreSQL.
        .testTarget(
            name: "FieldSyncStorageTests",
            dependencies: ["FieldSyncStore", "FieldSyncPostgres", "FieldSyncBlobs", "FieldSyncClient", "FieldSyncTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FieldSyncCLITests",
            dependencies: [
                "FieldSyncCLI", "FieldSyncClient", "FieldSyncStore", "FieldSyncTestSupport", "FieldSyncSeededRandom", "FieldSyncVault",
                "FieldSyncBlobs", "FieldSyncPostgres",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
