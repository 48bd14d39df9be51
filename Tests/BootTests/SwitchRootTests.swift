import Crypto
import Glibc
import SNP
import StrictJSON
import Testing
import Volume

@testable import Boot

/// switch_root only into what was measured: the dm-verity keys, their validation, and the refusals that come
/// before anything is mounted.
@Suite struct SwitchRootTests {
    static let rootHash = "9f8aa9c36ed345cc9c7d6c0e230cb2440bbdd9865041929a5bf3967de5f307ef"
    static let salt = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

    func load(_ json: String?, _ commandLine: String = "") throws(ConfigError) -> BootConfig {
        try BootConfig.load(file: json.map { Array($0.utf8) }, commandLine: KernelCommandLine(commandLine))
    }

    /// A switch_root configuration into /dev/vdb with every verity key on the (measured) command line.
    static let commandLine =
        "vhsm.handoff=switch_root vhsm.handoff.root=/dev/vdb vhsm.handoff.root_hash=\(rootHash.uppercased()) "
        + "vhsm.handoff.root_salt=\(salt) vhsm.handoff.root-data-blocks=8192"

    @Test func theVerityKeysComeFromTheCommandLine() throws {
        let config = try load(nil, Self.commandLine)
        #expect(throws: Never.self) { try config.validate(emulatorAvailable: false) }
        #expect(config.handoff.rootHash == (try Hex.decode(Self.rootHash)))
        #expect(config.handoff.rootSalt == (try Hex.decode(Self.salt)))
        #expect(config.handoff.rootDataBlocks == 8192)
        let verity = try #require(try config.verityRoot())
        #expect(verity.dataDevice == "/dev/vdb" && verity.hashDevice == "/dev/vdb")
        // Without root_hash_offset the tree follows the data.
        #expect(verity.hashOffset == 8192 * 4096)
        #expect(verity.dataBytes == 32 << 20)
        #expect(config.effectiveModules.contains("dm_verity"))
        #expect(!(try load(nil)).effectiveModules.contains("dm_verity"))
    }

    @Test func theVerityKeysComeFromTheFileAndTheCommandLineOverridesThem() throws {
        let config = try load(
            """
            {"handoff": {"mode": "switch_root", "root": "/dev/vdb", "root_hash": "\(Self.rootHash)", "root_salt": "-",
              "root_data_blocks": 3, "root_hash_offset": 0, "root_hash_device": "/dev/vdc"}}
            """, "vhsm.handoff.root_hash_offset=4096")
        #expect(throws: Never.self) { try config.validate(emulatorAvailable: false) }
        let verity = try #require(try config.verityRoot())
        #expect(verity.salt.isEmpty)
        #expect(verity.hashDevice == "/dev/vdc" && verity.hashOffset == 4096)
    }

    @Test(arguments: [
        "9f8aa9c36ed345cc",  // too short
        rootHash + "00",  // too long
        String(rootHash.dropLast()),  // odd
        "zz" + String(rootHash.dropFirst(2)),  // not hex
        "",
    ])
    func aRootHashThatIsNotSHA256HexIsAConfigError(value: String) {
        let error = #expect(throws: ConfigError.self) { try load(nil, "vhsm.handoff.root_hash=\(value)") }
        guard case .invalidValue(let key, let shown, let expected, let source)? = error else {
            Issue.record("expected an invalid value, got \(String(describing: error))")
            return
        }
        #expect(key == "handoff.root_hash" && shown == value && source == "kernel command line")
        #expect(expected.hasPrefix("64 hex digits"))
        #expect(throws: ConfigError.self) { try load(#"{"handoff": {"root_hash": "\#(value)"}}"#) }
    }

    @Test func saltOffsetAndBlocksAreChecked() throws {
        #expect(try load(nil, "vhsm.handoff.root_salt=-").handoff.rootSalt == [])
        #expect(try load(#"{"handoff": {"root_salt": ""}}"#).handoff.rootSalt == [])
        #expect(try load(#"{"handoff": {"root_salt": null}}"#).handoff.rootSalt == nil)
        #expect(throws: ConfigError.self) { try load(nil, "vhsm.handoff.root_salt=abc") }
        #expect(throws: ConfigError.self) {
            try load(nil, "vhsm.handoff.root_salt=" + String(repeating: "00", count: 257))
        }
        #expect(throws: ConfigError.self) { try load(nil, "vhsm.handoff.root_hash_offset=4097") }
        #expect(throws: ConfigError.self) { try load(nil, "vhsm.handoff.root_data_blocks=0") }
        #expect(throws: ConfigError.self) { try load(nil, "vhsm.handoff.root_hash_device=vdc") }
        #expect(throws: ConfigError.self) { try load(#"{"handoff": {"root_data_blocks": "3"}}"#) }
        // A tree that would overlap the data on the same device is refused when the configuration is checked.
        let overlapping = try load(nil, Self.commandLine + " vhsm.handoff.root_hash_offset=4096")
        let error = #expect(throws: ConfigError.self) { try overlapping.validate(emulatorAvailable: false) }
        #expect(error?.description.contains("overlaps its 33554432 bytes of data") == true)
    }

    @Test func switchRootWithoutARootHashIsRefusedWhenTheConfigurationIsRead() throws {
        let bare = try load(#"{"handoff": {"mode": "switch_root", "root": "/dev/vdb"}}"#)
        #expect(
            throws: ConfigError.inconsistent(
                "handoff.mode 'switch_root' into /dev/vdb needs handoff.root_hash, handoff.root_salt, "
                    + "handoff.root_data_blocks: vhsm-init switches only into a dm-verity root whose root hash, salt "
                    + "and data blocks are in the measured configuration (as 'veritysetup format --no-superblock' "
                    + "prints them)")
        ) { try bare.validate(emulatorAvailable: false) }
        let noHash = try load(nil, "vhsm.handoff=switch_root vhsm.handoff.root=/dev/vdb vhsm.handoff.root_salt=-")
        let error = #expect(throws: ConfigError.self) { try noHash.validate(emulatorAvailable: false) }
        #expect(error?.description.contains("needs handoff.root_hash, handoff.root_data_blocks:") == true)
        // Supervise mode does not need them.
        #expect(throws: Never.self) { try load(nil, "vhsm.handoff.root=/dev/vdb").validate(emulatorAvailable: false) }
    }

    @Test func switchRootWithoutARootHashIsRefusedAtTheHandoffToo() throws {
        // The same refusal in SwitchRoot itself, before it changes anything: one handoff line and a next line.
        let config = try load(#"{"handoff": {"mode": "switch_root", "root": "/dev/vdb"}}"#)
        let error = #expect(throws: BootError.self) { try SwitchRoot.verityRoot(config) }
        #expect(error?.stage == .handoff)
        #expect(
            error?.lines.first
                == "vhsm-init: handoff failed: refusing to switch into /dev/vdb without dm-verity: the measured "
                + "configuration has no handoff.root_hash, handoff.root_salt and handoff.root_data_blocks for it")
        #expect(error?.next.contains("veritysetup format --no-superblock") == true)
        #expect(error?.next.contains("vhsm-init --check-config") == true)
        let verity = try SwitchRoot.verityRoot(try load(nil, Self.commandLine))
        #expect(Hex.encode(verity.rootHash) == Self.rootHash)
    }

    @Test func theVolumeAsRootNeedsIntegrity() throws {
        let plain = try load(nil, "vhsm.handoff=switch_root vhsm.handoff.root=volume")
        let error = #expect(throws: ConfigError.self) { try plain.validate(emulatorAvailable: false) }
        #expect(error?.description.hasPrefix("handoff.root 'volume' needs integrity: true") == true)
        let integrity = try load(nil, "vhsm.handoff=switch_root vhsm.handoff.root=volume vhsm.integrity")
        #expect(throws: Never.self) { try integrity.validate(emulatorAvailable: false) }
        #expect(!integrity.effectiveModules.contains("dm_verity"))
        let mixed = try load(
            nil, "vhsm.handoff=switch_root vhsm.handoff.root=volume vhsm.integrity vhsm.handoff.root_salt=-")
        #expect(throws: ConfigError.self) { try mixed.validate(emulatorAvailable: false) }
        // At the hand-off the volume's own header decides: an existing volume without integrity is refused even
        // when the configuration asks for integrity (that setting only formats new volumes).
        let refused = #expect(throws: BootError.self) { try SwitchRoot.checkVolumeRoot(integrity, integrity: false) }
        #expect(
            refused?.lines.first?.hasPrefix("vhsm-init: handoff failed: refusing to switch into the volume") == true)
        #expect(refused?.cause.contains("expected hmac(sha256), found none") == true)
        #expect(throws: Never.self) { try SwitchRoot.checkVolumeRoot(integrity, integrity: true) }
    }

    @Test func theEffectiveConfigurationShowsTheVerityKeysAndReadsBack() throws {
        let config = try load(nil, Self.commandLine + " vhsm.handoff.root_hash_device=/dev/vdc")
        let rendered = config.json.rendered()
        #expect(rendered.contains(#""root_hash": "\#(Self.rootHash)""#))
        #expect(rendered.contains(#""root_salt": "\#(Self.salt)""#))
        #expect(rendered.contains(#""root_data_blocks": 8192"#) && rendered.contains(#""root_hash_offset": null"#))
        #expect(try load(rendered).json == config.json)
        #expect(try load(rendered).handoff == config.handoff)
        let unsalted = try load(nil, "vhsm.handoff.root_salt=-")
        #expect(unsalted.json.rendered().contains(#""root_salt": "-""#))
        #expect(try load(unsalted.json.rendered()).handoff == unsalted.handoff)
        #expect(try load(BootConfig().json.rendered()).handoff == BootConfig().handoff)
    }

    @Test func checkConfigRefusesABadRootHashAndPrintsAGoodOne() throws {
        let directory = try TemporaryDirectory()
        try directory.write(#"{"attestation": "emulator"}"#, to: "init.json")
        var out: [String] = []
        var err: [String] = []
        let file = directory.path + "/init.json"
        let refused = CheckConfig.run(
            ["--check-config", file, "--cmdline", Self.commandLine.replacing("=9F8A", with: "=9F8")],
            emulatorAvailable: true, out: { out.append($0) }, err: { err.append($0) })
        #expect(refused == 2 && out.isEmpty)
        #expect(
            err.first?.hasPrefix("vhsm-init: config failed: 'handoff.root_hash' in kernel command line is '9F8") == true
        )
        #expect(err.first?.contains("expected 64 hex digits") == true)
        err = []
        let missing = CheckConfig.run(
            ["--check-config", file, "--cmdline", "vhsm.handoff=switch_root vhsm.handoff.root=/dev/vdb"],
            emulatorAvailable: true, out: { out.append($0) }, err: { err.append($0) })
        #expect(missing == 2)
        #expect(err.first?.contains("needs handoff.root_hash, handoff.root_salt, handoff.root_data_blocks") == true)
        err = []
        let accepted = CheckConfig.run(
            ["--check-config", file, "--cmdline", Self.commandLine], emulatorAvailable: true,
            out: { out.append($0) }, err: { err.append($0) })
        #expect(accepted == 0 && err.isEmpty)
        let printed = try JSON.parse(Array(out.joined(separator: "\n").utf8))
        #expect(printed == (try load(#"{"attestation": "emulator"}"#, Self.commandLine)).json)
    }

    @Test func readingThroughStopsWhereTheDeviceEnds() throws {
        let directory = try TemporaryDirectory()
        try directory.write(String(repeating: "x", count: 3 * 4096), to: "root.img")
        let path = directory.path + "/root.img"
        #expect(SwitchRoot.readThrough(path, bytes: 3 * 4096) == nil)
        #expect(SwitchRoot.readThrough(path, bytes: 4 * 4096) == SwitchRoot.ReadFailure(offset: 3 * 4096, errno: ENXIO))
        #expect(SwitchRoot.readThrough(directory.path + "/absent", bytes: 1)?.errno == ENOENT)
    }

    @Test func aRefusedReadNamesTheConfiguredAndTheStoredRootHash() throws {
        // The one-level tree of VerityTests: three data blocks, then SHA-256(salt ‖ block) for each.
        let directory = try TemporaryDirectory()
        let path = directory.path + "/root.img"
        let salt = try Hex.decode(Self.salt)
        var image: [UInt8] = []
        var level: [UInt8] = []
        for index in 0..<3 {
            let block = [UInt8](repeating: UInt8(index + 1), count: 4096)
            image += block
            level += SHA256.hash(data: salt + block)
        }
        image += level + [UInt8](repeating: 0, count: 4096 - level.count)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        #expect(image.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == image.count)
        close(fd)

        let verity = try VerityRoot(
            dataDevice: path, hashDevice: path, rootHash: try Hex.decode(Self.rootHash), salt: salt, dataBlocks: 3,
            hashOffset: 3 * 4096)
        let error = SwitchRoot.refusal(
            verity, mapped: "/dev/mapper/vhsm-root", failure: SwitchRoot.ReadFailure(offset: 8192, errno: EIO))
        #expect(error.stage == .handoff)
        #expect(
            error.cause
                == "dm-verity refused \(path): reading /dev/mapper/vhsm-root failed at byte 8192 (data block 2): "
                + "Input/output error (EIO); configured root hash \(Self.rootHash), the hash tree on \(path) has "
                + "root hash \(Self.rootHash) (its top matches, so a data block or a lower hash block was changed)")
        #expect(error.next.hasPrefix("the root image is not the one veritysetup format hashed"))

        var other = try Hex.decode(Self.rootHash)
        other[31] ^= 1
        let mismatch = SwitchRoot.refusal(
            try VerityRoot(
                dataDevice: path, hashDevice: path, rootHash: other, salt: salt, dataBlocks: 3, hashOffset: 3 * 4096),
            mapped: "/dev/mapper/vhsm-root", failure: SwitchRoot.ReadFailure(offset: 0, errno: EIO))
        #expect(mismatch.cause.contains("configured root hash \(Hex.encode(other)), the hash tree on"))
        #expect(mismatch.cause.hasSuffix("has root hash \(Self.rootHash)"))
    }
}
