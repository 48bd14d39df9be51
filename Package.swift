// swift-tools-version: 6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .treatAllWarnings(as: .error),
]

let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let cryptoExtras = Target.Dependency.product(name: "CryptoExtras", package: "swift-crypto")
let asn1 = Target.Dependency.product(name: "SwiftASN1", package: "swift-asn1")
let system = Target.Dependency.product(name: "SystemPackage", package: "swift-system")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "vhsm",
    products: [
        .executable(name: "vhsm", targets: ["CLI"]),
        .executable(name: "vhsm-bench", targets: ["Bench"]),
        .executable(name: "vhsmd", targets: ["VHSMDMain"]),
        .executable(name: "vhsm-init", targets: ["VHSMInitMain"]),
        // The initramfs's one binary: /init (vhsm-init) and /usr/bin/vhsmd (a link to it) share the Swift
        // packages' code instead of carrying two copies.
        .executable(name: "vhsm-guest", targets: ["VHSMGuestMain"]),
    ],
    traits: [
        .trait(
            name: "Emulator",
            description: "vhsm-init and vhsmd talk to the software SEV-SNP emulator (test images only)"
        )
    ],
    // Exact versions: Package.resolved is not committed here, so the manifest itself fixes what a build uses.
    // Raising a version is a reviewed edit of this list.
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1.git", exact: "1.7.4"),
        .package(url: "https://github.com/apple/swift-system.git", exact: "1.8.1"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        // Without its default traits (FullFoundation, ConfigurationSupport) Hummingbird needs only
        // FoundationEssentials: vhsmd then ships without Foundation and its ICU data (initramfs size).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", exact: "1.21.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        // Identity tokens (identity/oidc): JWT signing and the JWKS.
        .package(url: "https://github.com/vapor/jwt-kit.git", exact: "5.8.0"),
        // HA on a shared PostgreSQL (issue 17): the storage backend and the leadership lease. Only the host vhsmd
        // links it: it imports Foundation, which the initramfs's vhsm-guest does without.
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CLinux"),
        .systemLibrary(name: "CCryptsetup", pkgConfig: "libcryptsetup", providers: [.apt(["libcryptsetup-dev"])]),
        .target(name: "StrictJSON", swiftSettings: strict),
        // The one seal-mode type, shared by Volume (which must not import SNP), SNP, Boot and KeyService, and the
        // HPKE sealing to the operator's key (the volume's recovery blob, vhsmd's sealed root tokens).
        .target(name: "Sealing", dependencies: ["StrictJSON", crypto, cryptoExtras], swiftSettings: strict),
        .target(
            name: "Volume", dependencies: ["CCryptsetup", "StrictJSON", "Sealing", crypto, cryptoExtras, system],
            swiftSettings: strict),
        .target(name: "SNP", dependencies: ["Sealing", crypto, cryptoExtras, asn1], swiftSettings: strict),
        .target(name: "SNPGuest", dependencies: ["SNP", "CLinux", system], swiftSettings: strict),
        // Attested TLS (DESIGN §9): the evidence vhsmd proves itself with (JSON and certificate extension), the
        // client's check of it, and the client connection that takes the handshake's key.
        .target(
            name: "AttestedTLS",
            dependencies: [
                "SNP", "StrictJSON", crypto, asn1,
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .target(
            name: "SNPEmulator",
            dependencies: ["SNP", crypto, cryptoExtras, asn1, system],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "CLI",
            dependencies: [
                "SNP", "SNPGuest", "SNPEmulator", "Volume", "Sealing", "AttestedTLS", argumentParser, system, crypto,
                .product(name: "X509", package: "swift-certificates"),
                // The HTTPS client of 'vhsm operator' (TLS is swift-nio-ssl's).
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "KeyService",
            dependencies: [
                "SNP", "SNPGuest", "Sealing", "AttestedTLS", "StrictJSON", crypto, cryptoExtras, asn1, argumentParser,
                .target(name: "SNPEmulator", condition: .when(traits: ["Emulator"])),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
                "CLinux",
            ],
            swiftSettings: strict,
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        .target(
            name: "Boot",
            dependencies: [
                "SNP", "SNPGuest", "CLinux", "Volume", "StrictJSON", "Sealing", system, crypto,
                .target(name: "SNPEmulator", condition: .when(traits: ["Emulator"])),
            ],
            swiftSettings: strict
        ),
        // Several vhsmd nodes on one PostgreSQL database (DESIGN §9, issue 17): the storage backend (Vault's table
        // layout, fenced writes), the lease that elects the active node, and the cluster's member entries.
        .target(
            name: "PostgreSQLCluster",
            dependencies: [
                "KeyService", crypto,
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .executableTarget(
            name: "VHSMDMain", dependencies: ["KeyService", "PostgreSQLCluster"], path: "Sources/Main/vhsmd",
            swiftSettings: strict),
        .executableTarget(
            name: "VHSMInitMain", dependencies: ["Boot"], path: "Sources/Main/vhsm-init", swiftSettings: strict),
        .executableTarget(
            name: "VHSMGuestMain", dependencies: ["Boot", "KeyService"], path: "Sources/Main/vhsm-guest",
            swiftSettings: strict),
        .executableTarget(
            name: "Bench", dependencies: ["SNP", "SNPEmulator", "AttestedTLS", crypto], swiftSettings: strict),
        .testTarget(name: "SNPTests", dependencies: ["SNP", crypto], swiftSettings: strict),
        .testTarget(
            name: "SNPGuestTests", dependencies: ["SNPGuest", "SNP", "CLinux", system], swiftSettings: strict),
        .testTarget(
            name: "SNPEmulatorTests",
            dependencies: ["SNPEmulator", "SNP", crypto, cryptoExtras],
            swiftSettings: strict
        ),
        .testTarget(
            name: "KeyServiceTests",
            dependencies: [
                "KeyService", "SNP", "SNPEmulator", "SNPGuest", "Sealing", "AttestedTLS", "CLinux", crypto,
                cryptoExtras,
                asn1,
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CLITests",
            dependencies: [
                "CLI", "SNP", "SNPEmulator", "Volume", "Sealing", "AttestedTLS", "AttestedTLSTestSupport", crypto,
                cryptoExtras, asn1, .product(name: "X509", package: "swift-certificates"),
                // `vhsm login` against a real vhsmd in-process (LoginCLITests).
                "KeyService", .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "BootTests",
            dependencies: ["Boot", "SNP", "SNPEmulator", "SNPGuest", "StrictJSON", "Sealing", "Volume", crypto],
            swiftSettings: strict),
        // A stand-in vhsmd (an in-process HTTPS server answering sys/attestation) for the client's tests.
        .target(
            name: "AttestedTLSTestSupport",
            dependencies: [
                "AttestedTLS", "SNP", "SNPEmulator", crypto, asn1,
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Tests/AttestedTLSTestSupport", swiftSettings: strict),
        .testTarget(
            name: "AttestedTLSTests",
            dependencies: [
                "AttestedTLS", "AttestedTLSTestSupport", "SNP", "SNPEmulator", crypto, asn1,
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        .testTarget(name: "StrictJSONTests", dependencies: ["StrictJSON"], swiftSettings: strict),
        // The fuzz targets (issue 16): each attacker-facing parser behind one entry point, with its seed corpus and
        // oracle. A library that no product links: the fuzzing executable (below) and FuzzTests are its only users.
        .target(
            name: "FuzzTargets",
            dependencies: [
                "SNP", "StrictJSON", "KeyService", "SNPEmulator", "SNPGuest", "CLinux", "Volume", "Sealing", "Boot",
                crypto, system, .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict),
        // Every committed fuzz finding and every seed, through the same entry points, in `swift test`.
        .testTarget(
            name: "FuzzTests", dependencies: ["FuzzTargets"], exclude: ["FuzzRegressions"], swiftSettings: strict),
        .testTarget(
            name: "VolumeTests", dependencies: ["Volume", "StrictJSON", "Sealing", crypto, cryptoExtras],
            swiftSettings: strict),
    ]
)

// `make fuzz` (VHSM_FUZZ=1, its own scratch path, `--sanitize=fuzzer --sanitize=address`) adds the libFuzzer
// executable: it has no `main` of its own (libFuzzer's runs and calls the exported `LLVMFuzzerTestOneInput`), so it
// links only in a fuzzer build, and `swift build` never sees it.
if Context.environment["VHSM_FUZZ"] == "1" {
    package.products.append(.executable(name: "vhsm-fuzz", targets: ["Fuzz"]))
    package.targets.append(
        .executableTarget(
            name: "Fuzz", dependencies: ["FuzzTargets"], path: "Sources/Fuzz", swiftSettings: strict))
}
