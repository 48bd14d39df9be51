import Foundation
import StrictJSON
import Testing

@testable import Volume

/// The header is attacker input (DESIGN.md §5): every edit below is made the way a host could make it, directly
/// in the image file. With `fixChecksums` the SHA-256 checksums are recomputed, so only the semantic checks can
/// catch the change.
@Suite struct HeaderValidationTests {
    private func rejection(_ image: TemporaryImage) throws -> VolumeError? {
        do {
            _ = try image.volume.readHeader()
            return nil
        } catch {
            return error
        }
    }

    @Test func acceptsItsOwnHeaderAsCryptsetupWroteIt() throws {
        let (image, _) = try Fixtures.formattedImage()
        #expect(try rejection(image) == nil)
        // Rewriting the same JSON with fresh checksums changes nothing: the checksum code agrees with cryptsetup's.
        try image.rewriteMetadata { $0 }
        #expect(try rejection(image) == nil)
    }

    @Test func refusesCipherNullEvenWithValidChecksums() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata {
            $0.replacingOccurrences(
                of: "\"encryption\":\"aes-xts-plain64\",\"sector_size\"",
                with: "\"encryption\":\"cipher_null-ecb\",\"sector_size\"")
        }
        let error = try rejection(image)
        #expect(
            error
                == .headerRejected(
                    path: image.path, field: "segment cipher", found: "'cipher_null-ecb'", expected: "aes-xts-plain64"))
        #expect(error?.description.contains("refusing to use it") == true)
        // libcryptsetup itself loads this header without complaint: only the semantic check stands in the way.
        try CryptLibrary.run { () throws(VolumeError) in try CryptDevice(device: image.path).load() }
    }

    @Test func refusesCipherNullWithBrokenChecksums() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata(fixChecksums: false) {
            $0.replacingOccurrences(of: "aes-xts-plain64\",\"sector_size", with: "cipher_null-ecb\",\"sector_size")
        }
        #expect(try rejection(image) == .checksumMismatch(path: image.path, header: "primary"))
    }

    @Test func refusesACipherNullKeyslotArea() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata {
            $0.replacingOccurrences(
                of: "\"encryption\":\"aes-xts-plain64\",\"key_size\":64}",
                with: "\"encryption\":\"cipher_null\",\"key_size\":64}")
        }
        #expect(
            try rejection(image)
                == .headerRejected(
                    path: image.path, field: "keyslot 0 area cipher", found: "'cipher_null'",
                    expected: "aes-xts-plain64"))
    }

    /// A keyslot area offset near 2^64 (a multiple of 4096, as the other checks want) is a header rejection; adding
    /// the area size to it overflowed and trapped PID 1.
    @Test func refusesAKeyslotAreaOffsetThatWouldOverflow() throws {
        let (image, _) = try Fixtures.formattedImage()
        let huge = String(UInt64.max - 4095)
        try image.rewriteMetadata {
            $0.replacingOccurrences(of: "\"offset\":\"32768\"", with: "\"offset\":\"\(huge)\"")
        }
        #expect(
            try rejection(image)
                == .headerRejected(
                    path: image.path, field: "keyslot 0 area offset", found: huge, expected: "inside the keyslots area")
        )
    }

    @Test func refusesAnUnknownJSONKey() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata {
            $0.replacingOccurrences(of: "\"iv_tweak\":\"0\"", with: "\"iv_tweak\":\"0\",\"x\":1")
        }
        #expect(
            try rejection(image)
                == .headerRejected(
                    path: image.path, field: "segments 0", found: "unknown key 'x'",
                    expected: "only the keys vhsm writes"))
    }

    @Test func refusesADuplicateJSONKey() throws {
        let (image, _) = try Fixtures.formattedImage()
        // json-c would keep the last "encryption"; a lenient first-wins reader would see aes-xts-plain64.
        try image.rewriteMetadata {
            $0.replacingOccurrences(
                of: "\"encryption\":\"aes-xts-plain64\",\"sector_size\"",
                with: "\"encryption\":\"aes-xts-plain64\",\"encryption\":\"cipher_null-ecb\",\"sector_size\"")
        }
        guard case .headerRejected(_, let field, let found, _) = try rejection(image) else {
            Issue.record("a duplicate key must be refused")
            return
        }
        #expect(field == "JSON area")
        #expect(found.contains("duplicate key 'encryption'"))
    }

    @Test func refusesAForeignTokenType() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata {
            $0.replacingOccurrences(
                of: "\"tokens\":{", with: "\"tokens\":{\"5\":{\"type\":\"systemd-tpm2\",\"keyslots\":[]},")
        }
        #expect(
            try rejection(image)
                == .headerRejected(
                    path: image.path, field: "token 5 type", found: "'systemd-tpm2'",
                    expected: "vhsm-snp, vhsm-recovery or vhsm-reenroll"))
    }

    @Test func refusesReencryptionRequirements() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata {
            $0.replacingOccurrences(
                of: "\"config\":{", with: "\"config\":{\"requirements\":{\"mandatory\":[\"online-reencrypt-v2\"]},")
        }
        #expect(
            try rejection(image)
                == .headerRejected(
                    path: image.path, field: "config", found: "'requirements' (reencryption flags)", expected: "none"))
    }

    @Test func refusesOtherKDFParameters() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata {
            $0.replacingOccurrences(
                of: "\"hash\":\"sha256\",\"iterations\":1000,", with: "\"hash\":\"sha256\",\"iterations\":1,")
        }
        guard case .headerRejected(_, let field, let found, let expected) = try rejection(image) else {
            Issue.record("a lowered PBKDF2 iteration count must be refused")
            return
        }
        #expect(field.hasSuffix("iterations"))
        #expect(found == "1")
        #expect(expected == "1000")
    }

    @Test func refusesDifferentSecondaryMetadata() throws {
        let (image, _) = try Fixtures.formattedImage()
        let json = try image.metadataJSON()
        let padded = Array(json.replacingOccurrences(of: "\"sector_size\":4096", with: "\"sector_size\":512").utf8)
        var area = padded + [UInt8](repeating: 0, count: Layout.jsonAreaSize - padded.count)
        try image.write(area, at: Layout.metadataSize + Layout.binaryHeaderSize)
        area = try image.read(offset: Layout.metadataSize, count: Layout.metadataSize)
        // Only the secondary copy changed, with a valid checksum of its own.
        try image.write(BinaryHeader.checksum(of: area[...]), at: Layout.metadataSize + 0x1C0)
        #expect(
            try rejection(image)
                == .headerRejected(
                    path: image.path, field: "secondary JSON area", found: "different from the primary",
                    expected: "identical copies"))
    }

    @Test func acceptsTheIntegrityShapeVhsmWrites() throws {
        // The host cannot format dm-integrity (no device-mapper), so build the header cryptsetup writes with
        // hmac(sha256): 96-byte keys, larger keyslot areas, and the segment's integrity object.
        let (image, _) = try Fixtures.formattedImage()
        let integrity =
            "\"integrity\":{\"type\":\"hmac(sha256)\",\"journal_encryption\":\"none\",\"journal_integrity\":\"none\"}"
        try image.rewriteMetadata {
            $0.replacingOccurrences(of: "\"key_size\":64,\"af\"", with: "\"key_size\":96,\"af\"")
                .replacingOccurrences(of: "\"size\":\"258048\"", with: "\"size\":\"385024\"")
                .replacingOccurrences(of: "\"offset\":\"290816\"", with: "\"offset\":\"417792\"")
                .replacingOccurrences(of: "\"sector_size\":4096}", with: "\"sector_size\":4096,\(integrity)}")
        }
        let metadata = try image.volume.readHeader().metadata
        #expect(metadata.integrity == "hmac(sha256)")
        #expect(metadata.keyslots.map(\.keyBytes) == [96, 96])
        #expect(metadata.keyslots.map(\.areaOffset) == [32768, 417792])
    }

    @Test func tokenMACCoversTheTokenFields() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.rewriteMetadata {
            $0.replacingOccurrences(of: "\"guest_field_select\":41", with: "\"guest_field_select\":1")
        }
        // Structurally fine, so it validates; the MAC does not.
        let header = try image.volume.readHeader()
        #expect(header.snpToken.binding.guestFieldSelect == 1)
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) { try header.checkKey(Fixtures.keys()) }
    }

    @Test func refusesABrokenTokenMAC() throws {
        let (image, _) = try Fixtures.formattedImage()
        let mac = try image.volume.readHeader().snpToken.mac
        var flipped = mac
        flipped[0] ^= 0x01
        try image.rewriteMetadata {
            $0.replacingOccurrences(
                of: "\"mac\":\"\(Encoding.hex(mac))\"", with: "\"mac\":\"\(Encoding.hex(flipped))\"")
        }
        let header = try image.volume.readHeader()
        #expect(header.snpToken.mac == flipped)
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) { try header.verifyMAC(Fixtures.keys()) }
    }

    @Test func usesOnlyTheValidatedCopyAfterReadingIt() throws {
        let (image, _) = try Fixtures.formattedImage()
        let header = try image.volume.readHeader()
        // The host swaps the on-disk header after the guest read it (TOCTOU): the key check still runs on the
        // RAM copy, so it neither sees the change nor fails.
        try image.write([UInt8](repeating: 0, count: Layout.headerAreaSize), at: 0)
        #expect(try image.volume.probe() == .blank)
        #expect(try header.checkKey(Fixtures.keys()) == 0)
    }

    @Test func strictJSONParserRefusesWhatJSONCMightReadDifferently() throws {
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(Array("{\"a\":1,\"a\":2}".utf8)) }
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(Array("{\"a\":1} x".utf8)) }
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(Array("{\"a\":\"\\u0000\"}".utf8)) }
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(Array("{\"a\":1.5}".utf8)) }
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(Array("{\"a\":[1,]}".utf8)) }
        let value = try JSON.parse(Array("{\"b\":[\"x\\/y\",true,null],\"a\":18446744073709551615}".utf8))
        #expect(value["a"] == .number(.max))
        #expect(value.serialized == "{\"b\":[\"x/y\",true,null],\"a\":18446744073709551615}")
    }
}
