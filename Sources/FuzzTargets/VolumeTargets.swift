import Crypto
import Foundation
import Sealing
import StrictJSON
import Volume

/// The LUKS2 header a malicious host writes, through exactly the validation vhsm-init applies before anything
/// uses it (`ValidatedHeader.validating`, which `LUKSVolume.readHeader` runs on the 2 MiB it read): both binary
/// headers and their checksums, the JSON area through StrictJSON, the allow-list of `Metadata.validate`, and the
/// `vhsm-snp` token's MAC.
enum VolumeTargets {
    /// The fixed enrolment the seeds are formatted with: the sealing key and the volume UUID.
    static let sealingKey: [UInt8] = (0..<32).map { UInt8($0) }
    static let uuid = "5b4c1a3e-7f0e-4d2a-9c61-3e8f0a1b2c3d"
    static let tcb: [UInt8] = [0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x18, 0xDB]

    /// Input flags (the first byte).
    struct Flags: OptionSet {
        let rawValue: UInt8
        /// Recompute both SHA-256 checksums after assembling the area (so mutations reach the JSON checks).
        static let fixChecksums = Flags(rawValue: 1)
        /// The secondary copy is the primary's, with its own magic and offset.
        static let mirror = Flags(rawValue: 2)
        /// The input is the primary's first 512 header bytes then its JSON text; else the area from offset 0.
        static let compact = Flags(rawValue: 4)
    }

    static let compactHeaderCount = 0x200

    /// The 2 MiB header area the input describes (see `Flags`); everything the input does not give is zero.
    static func area(_ input: [UInt8]) -> [UInt8] {
        var area = [UInt8](repeating: 0, count: Layout.headerAreaSize)
        guard let first = input.first else { return area }
        let flags = Flags(rawValue: first)
        let body = input.dropFirst()
        if flags.contains(.compact) {
            let header = body.prefix(compactHeaderCount)
            area.replaceSubrange(0..<header.count, with: header)
            let json = body.dropFirst(compactHeaderCount).prefix(Layout.jsonAreaSize)
            let start = Layout.binaryHeaderSize
            area.replaceSubrange(start..<start + json.count, with: json)
        } else {
            let bytes = body.prefix(2 * Layout.metadataSize)
            area.replaceSubrange(0..<bytes.count, with: bytes)
        }
        if flags.contains(.mirror) {
            let copy = Layout.metadataSize
            area.replaceSubrange(copy..<2 * copy, with: area[0..<copy])
            area.replaceSubrange(copy..<copy + 6, with: [0x53, 0x4B, 0x55, 0x4C, 0xBA, 0xBE])
            area.replaceSubrange(copy + 0x100..<copy + 0x108, with: bigEndian(UInt64(copy)))
        }
        if flags.contains(.fixChecksums) { fixChecksums(&area) }
        return area
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(value >> (56 - 8 * $0) & 0xFF) } }

    /// SHA-256 of each metadata copy with its checksum field zeroed, in that field (LUKS2 §2).
    static func checksum(_ area: [UInt8], copy: Int) -> [UInt8] {
        var metadata = Array(area[copy..<copy + Layout.metadataSize])
        metadata.replaceSubrange(0x1C0..<0x200, with: [UInt8](repeating: 0, count: 64))
        return Array(SHA256.hash(data: metadata)) + [UInt8](repeating: 0, count: 32)
    }

    static func fixChecksums(_ area: inout [UInt8]) {
        for copy in [0, Layout.metadataSize] {
            area.replaceSubrange(copy + 0x1C0..<copy + 0x200, with: checksum(area, copy: copy))
        }
    }

    /// The headers vhsm formats, one per seal mode, and their validated metadata: the seeds, and the enrolments
    /// whose MAC the fixed keys verify. Formatted once per process on sparse image files.
    struct Formatted: Sendable {
        var area: [UInt8]
        var metadata: Metadata
    }

    private static let formatted = MadeOnce<[Formatted]>()

    static func formattedHeaders() throws(FuzzFinding) -> [Formatted] {
        try formatted.value { () throws(FuzzFinding) in try formatHeaders() }
    }

    private static func formatHeaders() throws(FuzzFinding) -> [Formatted] {
        let bindings: [(SNPBinding, RecoveryRecipient?)] = [
            (
                SNPBinding(
                    mode: .measurement, guestFieldSelect: 0b101001, tcb: tcb,
                    measurement: (0..<48).map { UInt8($0 * 3 & 0xFF) }),
                .p384(P384.KeyAgreement.PrivateKey().publicKey)
            ),
            (SNPBinding(mode: .platform, guestFieldSelect: 0b100001, tcb: tcb), nil),
            (
                SNPBinding(
                    mode: .image, guestFieldSelect: 0b110111, tcb: tcb, imageID: [UInt8](repeating: 0x11, count: 16),
                    familyID: [UInt8](repeating: 0x22, count: 16), guestSVN: 3),
                .x25519(Curve25519.KeyAgreement.PrivateKey().publicKey)
            ),
        ]
        var made: [Formatted] = []
        for (binding, recipient) in bindings {
            do {
                let image = try ScratchImage(size: Layout.minimumDeviceSize)
                defer { image.remove() }
                let keys = VolumeKeys.derive(sealingKey: sealingKey, volumeUUID: uuid, mode: binding.mode)
                _ = try LUKSVolume(path: image.path).format(
                    .init(uuid: uuid, binding: binding, recoveryRecipient: recipient), keys: keys)
                let area = try image.read(count: Layout.headerAreaSize)
                let header = try ValidatedHeader.validating(area: area, path: image.path)
                made.append(Formatted(area: area, metadata: header.metadata))
            } catch {
                throw FuzzFinding("luks2-header", "cannot format a \(binding.mode) seed volume: \(error)")
            }
        }
        return made
    }

    /// A sparse file in its own temporary directory.
    struct ScratchImage {
        let directory: URL
        let path: String

        init(size: Int) throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent(
                "vhsm-fuzz-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            path = directory.appendingPathComponent("volume.img").path
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw CocoaError(.fileWriteUnknown)
            }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.truncate(atOffset: UInt64(size))
            try handle.close()
        }

        func read(count: Int) throws -> [UInt8] {
            let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            return Array(try handle.read(upToCount: count) ?? Data())
        }

        func remove() { try? FileManager.default.removeItem(at: directory) }
    }

    static let luks2Header = FuzzTarget(
        name: "luks2-header",
        summary: "ValidatedHeader.validating (binary headers, StrictJSON, allow-list, token MAC) on host-written areas",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let area = area(input)
            guard let header = try? ValidatedHeader.validating(area: area, path: "/dev/fuzz") else { return }
            try checkAccepted(area, header.metadata)
            try checkMAC(header, area: area)
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            var seeds: [[UInt8]] = []
            for header in try formattedHeaders() {
                let copies = Array(header.area[0..<2 * Layout.metadataSize])
                let json = Array(copies[Layout.binaryHeaderSize..<Layout.metadataSize].prefix { $0 != 0 })
                let compact = Array(copies[0..<compactHeaderCount]) + json
                // As written; the compact form with checksums fixed and the copy mirrored (JSON mutations); a
                // flipped JSON byte without fixing checksums; a truncated area.
                seeds.append([0] + copies)
                seeds.append([Flags([.compact, .mirror, .fixChecksums]).rawValue] + compact)
                var flipped = copies
                flipped[Layout.binaryHeaderSize + json.count / 2] ^= 0x20
                seeds.append([0] + flipped)
                seeds.append([0] + Array(copies.prefix(Layout.metadataSize + 100)))
            }
            for header in try cryptsetupHeaders(for: "luks2-header") {
                seeds.append([0] + header)
                var flipped = header
                flipped[0x10] ^= 1
                seeds.append([Flags.fixChecksums.rawValue] + flipped)
            }
            return seeds
        })

    /// `cryptsetup luksFormat --type luks2` with its own defaults on small files: real headers vhsm did not write
    /// (refused by the allow-list), as starting points for the binary header checks. Each is its first 32 KiB.
    static func cryptsetupHeaders(for target: String) throws(FuzzFinding) -> [[UInt8]] {
        guard
            let cryptsetup = ["/usr/sbin/cryptsetup", "/sbin/cryptsetup"].first(
                where: FileManager.default.isExecutableFile)
        else { throw FuzzFinding(target, "cryptsetup is not installed (make deps installs cryptsetup-bin)") }
        var headers: [[UInt8]] = []
        for extra in [[String](), ["--integrity", "hmac-sha256", "--integrity-no-wipe"]] {
            do {
                let image = try ScratchImage(size: 32 << 20)
                defer { image.remove() }
                let keyFile = image.directory.appendingPathComponent("key").path
                try Data("fuzz-passphrase".utf8).write(to: URL(fileURLWithPath: keyFile))
                let process = Process()
                process.executableURL = URL(fileURLWithPath: cryptsetup)
                process.arguments =
                    [
                        "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
                        "--pbkdf-force-iterations", "1000", "--key-file", keyFile,
                    ] + extra + [image.path]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                process.waitUntilExit()
                // --integrity needs device-mapper to wipe; without it cryptsetup refuses, and only the plain
                // header is a seed.
                guard process.terminationStatus == 0 else {
                    if extra.isEmpty {
                        throw FuzzFinding(target, "cryptsetup luksFormat exited \(process.terminationStatus)")
                    }
                    continue
                }
                headers.append(try image.read(count: 2 * Layout.metadataSize))
            } catch let error as FuzzFinding {
                throw error
            } catch {
                throw FuzzFinding(target, "cannot make a cryptsetup seed: \(error)")
            }
        }
        return headers
    }

    /// What an accepted header must be, checked here independently of `Metadata.validate`.
    static func checkAccepted(_ area: [UInt8], _ metadata: Metadata) throws(FuzzFinding) {
        func fail(_ message: String) -> FuzzFinding { FuzzFinding("luks2-header", "accepted, but \(message)") }
        // Both binary headers: magic, version, hdr_size, hdr_offset, checksum.
        for (copy, magic) in [(0, "LUKS"), (Layout.metadataSize, "SKUL")] {
            guard area[copy..<copy + 4].elementsEqual(magic.utf8),
                area[copy + 4..<copy + 8].elementsEqual([0xBA, 0xBE, 0, 2]),
                area[copy + 8..<copy + 16].elementsEqual(bigEndian(UInt64(Layout.metadataSize))),
                area[copy + 0x100..<copy + 0x108].elementsEqual(bigEndian(UInt64(copy))),
                area[copy + 0x1C0..<copy + 0x200].elementsEqual(checksum(area, copy: copy))
            else { throw fail("the binary header at \(copy) is not a LUKS2 header with its checksum") }
        }
        let uuid = Array(metadata.uuid.utf8)
        let hex = Set("0123456789abcdef".utf8)
        guard uuid.count == 36,
            uuid.enumerated().allSatisfy({
                [8, 13, 18, 23].contains($0.offset) ? $0.element == 0x2D : hex.contains($0.element)
            })
        else { throw fail("UUID '\(metadata.uuid)' is not canonical") }
        guard metadata.segmentOffset == UInt64(Layout.headerAreaSize), metadata.segmentSize == "dynamic",
            metadata.integrity == nil || metadata.integrity == Layout.integrity
        else { throw fail("the segment is not the one vhsm writes") }
        let keyBytes = Layout.volumeKeyBytes + (metadata.integrity == nil ? 0 : Layout.integrityKeyBytes)
        let slots = metadata.keyslots
        guard (1...Layout.maximumKeyslots).contains(slots.count), slots.map(\.id) == slots.map(\.id).sorted(),
            Set(slots.map(\.id)).count == slots.count
        else { throw fail("it has \(slots.count) keyslots, or their ids repeat or are unsorted") }
        let areaSize = UInt64((keyBytes * Int(Layout.afStripes) + 4095) / 4096 * 4096)
        for slot in slots {
            guard slot.keyBytes == keyBytes, slot.kdfIterations == Layout.pbkdf2Iterations, slot.kdfSalt.count == 32,
                slot.areaSize == areaSize, slot.areaOffset % 4096 == 0,
                slot.areaOffset >= UInt64(2 * Layout.metadataSize),
                slot.areaOffset + slot.areaSize <= UInt64(Layout.headerAreaSize)
            else { throw fail("keyslot \(slot.id) is outside the allow-list") }
            for other in slots where other.id != slot.id {
                guard
                    slot.areaOffset + slot.areaSize <= other.areaOffset
                        || other.areaOffset + other.areaSize <= slot.areaOffset
                else { throw fail("keyslots \(slot.id) and \(other.id) overlap") }
            }
        }
        let digest = metadata.digest
        guard digest.keyslots == slots.map(\.id), digest.iterations == Layout.pbkdf2Iterations,
            digest.salt.count == 32, digest.digest.count == 32
        else { throw fail("the digest does not bind every keyslot with PBKDF2-SHA256") }
        guard let snp = metadata.snpToken, metadata.keyslot(snp.keyslot) != nil else {
            throw fail("there is no vhsm-snp token on an existing keyslot")
        }
        // The provisioning mark (a first boot not finished) never stands beside a ready token, and its label is the
        // one vhsm writes in both binary headers.
        guard metadata.provisioningMark == nil || snp.provisioning else {
            throw fail("it carries the provisioning mark beside a ready vhsm-snp token")
        }
        for copy in [0, Layout.metadataSize] {
            let label = area[copy + 0x18..<copy + 0x18 + 48].prefix { $0 != 0 }
            guard
                label.isEmpty || (metadata.provisioningMark != nil && label.elementsEqual(ProvisioningMark.label.utf8))
            else { throw fail("the binary header at \(copy) has a label other than the provisioning mark's") }
        }
        if let recovery = metadata.recoveryToken {
            guard metadata.keyslot(recovery.keyslot) != nil, recovery.keyslot != snp.keyslot else {
                throw fail("the recovery token's keyslot is missing or the machine keyslot")
            }
        }
        guard metadata.reenrollGrant == nil || metadata.recoveryToken != nil else {
            throw fail("a re-enrolment grant without a recovery token")
        }
        // The same bytes validate to the same metadata, and so does the JSON area rewritten canonically (StrictJSON
        // serialisation, zero padded, checksums fixed): nothing depends on formatting or member order.
        guard (try? ValidatedHeader.validating(area: area, path: "/dev/fuzz"))?.metadata == metadata else {
            throw fail("validating the same bytes again gives another result")
        }
        let jsonStart = Layout.binaryHeaderSize
        let text = area[jsonStart..<Layout.metadataSize].prefix { $0 != 0 }
        guard let json = try? JSON.parse(text) else { throw fail("its JSON area does not parse on its own") }
        let canonical = Array(json.serialized.utf8)
        guard canonical.count < Layout.jsonAreaSize else { return }
        var rewritten = area
        for copy in [0, Layout.metadataSize] {
            let start = copy + jsonStart
            rewritten.replaceSubrange(
                start..<start + Layout.jsonAreaSize,
                with: canonical + [UInt8](repeating: 0, count: Layout.jsonAreaSize - canonical.count))
        }
        fixChecksums(&rewritten)
        guard (try? ValidatedHeader.validating(area: rewritten, path: "/dev/fuzz"))?.metadata == metadata else {
            throw fail("its JSON rewritten canonically validates differently")
        }
    }

    /// The MAC binds what it claims to: when an accepted header's MAC verifies with the seeds' keys, changing
    /// any one MAC-covered value the allow-list leaves free (the machine keyslot's KDF salt, the digest and its
    /// salt, the token's TCB) gives a header that is still accepted and whose MAC no longer verifies.
    static func checkMAC(_ header: ValidatedHeader, area: [UInt8]) throws(FuzzFinding) {
        let metadata = header.metadata
        guard let token = metadata.snpToken, let tokenID = metadata.snpTokenID else { return }
        let keys = VolumeKeys.derive(sealingKey: sealingKey, volumeUUID: header.uuid, mode: token.binding.mode)
        guard (try? header.verifyMAC(keys)) != nil else { return }
        let text = area[Layout.binaryHeaderSize..<Layout.metadataSize].prefix { $0 != 0 }
        guard let json = try? JSON.parse(text) else { return }
        let edits: [(String, [String], (String) -> String?)] = [
            ("the machine keyslot's KDF salt", ["keyslots", String(token.keyslot), "kdf", "salt"], flipBase64),
            ("the digest", ["digests", String(metadata.digest.id), "digest"], flipBase64),
            ("the digest's salt", ["digests", String(metadata.digest.id), "salt"], flipBase64),
            ("the token's TCB", ["tokens", String(tokenID), "tcb"], flipHex),
        ]
        for (what, path, change) in edits {
            guard let edited = replacing(path, in: json, change) else {
                throw FuzzFinding("luks2-header", "accepted, but \(what) is not at \(path.joined(separator: "."))")
            }
            let canonical = Array(edited.serialized.utf8)
            guard canonical.count < Layout.jsonAreaSize else { continue }
            var changed = area
            for copy in [0, Layout.metadataSize] {
                let start = copy + Layout.binaryHeaderSize
                changed.replaceSubrange(
                    start..<start + Layout.jsonAreaSize,
                    with: canonical + [UInt8](repeating: 0, count: Layout.jsonAreaSize - canonical.count))
            }
            fixChecksums(&changed)
            guard let other = try? ValidatedHeader.validating(area: changed, path: "/dev/fuzz") else {
                throw FuzzFinding("luks2-header", "changing \(what) alone made an accepted header refused")
            }
            guard (try? other.verifyMAC(keys)) == nil else {
                throw FuzzFinding("luks2-header", "the token's MAC still verifies after \(what) changed")
            }
        }
    }

    /// `json` with the string at `path` passed through `change`; nil when the path or the string is not there.
    static func replacing(_ path: [String], in json: JSON, _ change: (String) -> String?) -> JSON? {
        guard let first = path.first else {
            guard case .string(let text) = json, let changed = change(text) else { return nil }
            return .string(changed)
        }
        guard case .object(let members) = json, let index = members.firstIndex(where: { $0.key == first }),
            let value = replacing(Array(path.dropFirst()), in: members[index].value, change)
        else { return nil }
        var edited = members
        edited[index].value = value
        return .object(edited)
    }

    static func flipBase64(_ text: String) -> String? {
        guard var bytes = Data(base64Encoded: text).map(Array.init), !bytes.isEmpty else { return nil }
        bytes[0] ^= 1
        return Data(bytes).base64EncodedString()
    }

    static func flipHex(_ text: String) -> String? {
        guard let last = text.last, last.isHexDigit else { return nil }
        return String(text.dropLast()) + (last == "0" ? "1" : "0")
    }
}
