import Crypto
import Foundation
import SNP
import Testing

/// The ID block vectors in `../shared/testdata/measure` (vectors.md, "ID block / ID auth"). A missing folder is a
/// test failure, never a skip.
enum MeasureVectors {
    struct Missing: Error, CustomStringConvertible {
        var path: String
        var description: String {
            "test data \(path) is missing: the tests need ../shared/testdata/measure beside the checkout"
        }
    }

    static let directory: URL = {
        if let override = ProcessInfo.processInfo.environment["VHSM_TESTDATA"] {
            return URL(fileURLWithPath: override).appendingPathComponent("measure")
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("../shared/testdata/measure").standardized
    }()

    static func read(_ file: String) throws -> [UInt8] {
        let url = directory.appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: url.path) else { throw Missing(path: url.path) }
        return Array(data)
    }

    static func publicKey(_ file: String) throws -> P384.Signing.PublicKey {
        try P384.Signing.PublicKey(pemRepresentation: String(decoding: try read(file), as: UTF8.self))
    }

    static let b03Measurement =
        "b401308a0b72a6c70fa4be86fcd235377a55110b75dcb911773d934f19b9c93ec887086d2f548d691f1718e96eba2c0f"
    static let idKeyDigest =
        "870b7e35c53f8a72d0d322f75ab2af8262792aaf6579622ce4131c3f21f289e77cb0560a5e3b90b3932e674ec709cb14"
    static let authorKeyDigest =
        "63111c34bbfc0a4938f9a009bd074980d8172323e61599c9fd336da8673248e1dca98d0be8f76376a106b8afd4c0a057"
    static let idKeyHead =
        "020000009a8a6f98fa144e71eb2bb9046b32eb459d9f02ec87cf938e5a5e72afe2e5d8f605c80a39e2763a18652bbdc2a1d10fb2"
        + "0000000000000000000000000000000000000000000000004b3669dc3d888070fb4e39591e0e33ce68fbebf6d7d6a61b23a62658"
        + "eff64f951e8976489475263576cc30abb8a0942c000000000000000000000000000000000000000000000000"
    static let authorKeyHead =
        "02000000a0101241188c589079d94b7f7a06d968617e623a810f3b38f34a16bf3fc2c693d8543242071ce59a2dbf0924c61f8106"
        + "000000000000000000000000000000000000000000000000c912a92d3437e708d6e4cd62890623364cdf140b880f169d2f47fe51"
        + "685fbb58fd728c66254efddc71d25626a220b432000000000000000000000000000000000000000000000000"
}

@Suite struct IDBlockTests {
    @Test func publicKeyStructuresMatchTheVectors() throws {
        for (file, head, digest) in [
            ("id_key_test.pub.pem", MeasureVectors.idKeyHead, MeasureVectors.idKeyDigest),
            ("author_key_test.pub.pem", MeasureVectors.authorKeyHead, MeasureVectors.authorKeyDigest),
        ] {
            let key = SEVPublicKey(try MeasureVectors.publicKey(file))
            let bytes = key.bytes
            #expect(bytes.count == 0x404)
            #expect(Hex.encode(bytes.prefix(0x94)) == head, "\(file)")
            #expect(bytes[0x94...].allSatisfy { $0 == 0 })
            #expect(Hex.encode(key.digest) == digest, "\(file)")
            #expect(try SEVPublicKey(bytes: bytes) == key)
            #expect(try key.p384().x963Representation == MeasureVectors.publicKey(file).x963Representation)
        }
    }

    @Test func theB03BlockParsesAndRoundTrips() throws {
        let bytes = try MeasureVectors.read("id-block-B03.bin")
        let block = try IDBlock(bytes: bytes)
        #expect(Hex.encode(block.launchDigest) == MeasureVectors.b03Measurement)
        #expect(block.familyID == Array(repeating: 0, count: 16) && block.imageID == Array(repeating: 0, count: 16))
        #expect(block.version == 1 && block.guestSVN == 0 && block.policy.rawValue == 0x30000)
        #expect(block.bytes == bytes)
        let built = try IDBlock(
            launchDigest: try Hex.decode(MeasureVectors.b03Measurement),
            policy: [
                .smtAllowed, .reservedMustBeOne,
            ])
        #expect(built.bytes == bytes)
    }

    @Test func theV1BlockMatchesUpstream() throws {
        let expected = try #require(
            Data(
                base64Encoded:
                    "B28FLQi9p6cAqipgjFyqawDrrSl7bWioWkWx5mmlWLZ+G5HShKMB/mPE+gdQRn7tAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABAAAAAAAAAAAAAwAAAAAA"
            ))
        let digest = try #require(
            Data(base64Encoded: "B28FLQi9p6cAqipgjFyqawDrrSl7bWioWkWx5mmlWLZ+G5HShKMB/mPE+gdQRn7t"))
        let block = try IDBlock(launchDigest: Array(digest), policy: GuestPolicy(rawValue: 0x30000))
        #expect(block.bytes == Array(expected))
    }

    @Test func theB03AuthParsesRoundTripsAndVerifies() throws {
        let block = try IDBlock(bytes: try MeasureVectors.read("id-block-B03.bin"))
        let bytes = try MeasureVectors.read("id-auth-B03.bin")
        let auth = try IDAuthentication(bytes: bytes)
        #expect(auth.bytes == bytes)
        #expect(auth.idKeyAlgorithm == 1 && auth.authorKeyAlgorithm == 1)
        #expect(auth.problems(for: block) == [])
        #expect(Hex.encode(auth.idKeyDigest) == MeasureVectors.idKeyDigest)
        #expect(Hex.encode(auth.authorKeyDigest) == MeasureVectors.authorKeyDigest)
        #expect(Array(SHA384.hash(data: bytes[0x240..<0x644])) == auth.idKeyDigest)
        #expect(Array(SHA384.hash(data: bytes[0x880..<0xC84])) == auth.authorKeyDigest)
        #expect(auth.idKey == SEVPublicKey(try MeasureVectors.publicKey("id_key_test.pub.pem")))
        #expect(auth.authorKey == SEVPublicKey(try MeasureVectors.publicKey("author_key_test.pub.pem")))
        #expect(auth.idKeySignature != nil)
    }

    @Test func aFlippedBitIsAProblem() throws {
        let blockBytes = try MeasureVectors.read("id-block-B03.bin")
        let authBytes = try MeasureVectors.read("id-auth-B03.bin")
        let block = try IDBlock(bytes: blockBytes)
        let auth = try IDAuthentication(bytes: authBytes)

        for offset in [0, 0x2F, 0x30, 0x50, 0x54, 0x5F] {
            var flipped = blockBytes
            flipped[offset] ^= 0x01
            #expect(!auth.problems(for: try IDBlock(bytes: flipped)).isEmpty, "block byte \(offset)")
        }
        // R and S of ID_BLOCK_SIG, the ID key (which ID_KEY_SIG covers), R and S of ID_KEY_SIG, the author key.
        for offset in [0x040, 0x088, 0x240 + 4, 0x240 + 0x4C, 0x680, 0x6C8, 0x880 + 4, 0x880 + 0x4C] {
            var flipped = authBytes
            flipped[offset] ^= 0x01
            let problems = (try? IDAuthentication(bytes: flipped))?.problems(for: block)
            #expect(problems.map { !$0.isEmpty } ?? true, "auth byte 0x\(String(offset, radix: 16))")
        }
        var wrongAlgorithm = auth
        wrongAlgorithm.idKeyAlgorithm = 2
        #expect(wrongAlgorithm.problems(for: block).count == 1)
        wrongAlgorithm = auth
        wrongAlgorithm.authorKeyAlgorithm = 0
        #expect(wrongAlgorithm.problems(for: block).count == 1)
        var wrongVersion = block
        wrongVersion.version = 2
        // VERSION is signed too, so the signature fails as well.
        #expect(auth.problems(for: wrongVersion).count == 2)
        var unsignedKey = auth
        unsignedKey.idKeySignature = nil
        #expect(unsignedKey.problems(for: block).count == 1)
        var orphanSignature = auth
        orphanSignature.authorKey = nil
        #expect(orphanSignature.problems(for: block).count == 1)
    }

    @Test func reservedBytesMustBeZero() throws {
        let original = try MeasureVectors.read("id-auth-B03.bin")
        for offset in [
            0x008, 0x03F, 0x040 + 0x90, 0x240 + 0x94, 0x643, 0x644, 0x67F, 0x680 + 0x1FF, 0xC83, 0xC84, 0xFFF,
        ] {
            var bytes = original
            bytes[offset] = 0x80
            #expect(throws: LayoutError.reservedNotZero(offset: offset)) { try IDAuthentication(bytes: bytes) }
        }
        #expect(throws: LayoutError.wrongSize(structure: "ID_AUTH_INFO", expected: 0x1000, actual: 0x0FFF)) {
            try IDAuthentication(bytes: original.dropLast())
        }
        #expect(throws: LayoutError.self) { try IDBlock(bytes: [UInt8](repeating: 0, count: 0x61)) }
        var key = SEVPublicKey(try MeasureVectors.publicKey("id_key_test.pub.pem")).bytes
        key[0x403] = 1
        #expect(throws: LayoutError.reservedNotZero(offset: 0x403)) { try SEVPublicKey(bytes: key) }
        var signature = [UInt8](repeating: 0, count: 0x200)
        signature[0x90] = 1
        #expect(throws: LayoutError.reservedNotZero(offset: 0x90)) { try SEVSignature(bytes: signature) }
        #expect(throws: LayoutError.self) { try IDBlock(launchDigest: [1, 2, 3], policy: []) }
    }

    @Test(arguments: [false, true])
    func signAndVerifyRoundTrip(withAuthor: Bool) throws {
        let idKey = P384.Signing.PrivateKey()
        let authorKey = withAuthor ? P384.Signing.PrivateKey() : nil
        let block = try IDBlock(
            launchDigest: Array(repeating: 0xAB, count: 48), familyID: Array(1...16), imageID: Array(17...32),
            guestSVN: 7, policy: GuestPolicy(rawValue: 0x30000))
        let auth = try IDAuthentication.sign(block, idKey: idKey, authorKey: authorKey)
        #expect(auth.problems(for: block) == [])
        #expect(auth.idKeyDigest == SEVPublicKey(idKey.publicKey).digest)
        #expect(auth.idBlockSignature.r[48...].allSatisfy { $0 == 0 } && auth.idBlockSignature.s.count == 72)

        let bytes = auth.bytes
        #expect(bytes.count == 0x1000)
        let parsed = try IDAuthentication(bytes: bytes)
        #expect(parsed == auth && parsed.bytes == bytes)
        #expect(parsed.problems(for: try IDBlock(bytes: block.bytes)) == [])
        if let authorKey {
            #expect(parsed.authorKey == SEVPublicKey(authorKey.publicKey))
            #expect(parsed.authorKeyDigest == SEVPublicKey(authorKey.publicKey).digest)
        } else {
            #expect(parsed.authorKey == nil && parsed.idKeySignature == nil)
            #expect(parsed.authorKeyDigest == Array(repeating: 0, count: 48))
            #expect(bytes[0x680..<0xC84].allSatisfy { $0 == 0 })
        }

        // Signed by another ID key than the one the structure names.
        var swapped = auth
        swapped.idKey = SEVPublicKey(P384.Signing.PrivateKey().publicKey)
        #expect(!swapped.problems(for: block).isEmpty)

        var other = block
        other.guestSVN += 1
        #expect(auth.problems(for: other) == ["ID_BLOCK_SIG does not verify over the ID block with ID_KEY"])
    }

    @Test func signatureConversionIsLittleEndianAndPadded() throws {
        let key = P384.Signing.PrivateKey()
        let ecdsa = try key.signature(for: [1, 2, 3])
        let structure = SEVSignature(ecdsa)
        let raw = Array(ecdsa.rawRepresentation)
        #expect(structure.r == raw[0..<48].reversed() + Array(repeating: 0, count: 24))
        #expect(structure.s == raw[48..<96].reversed() + Array(repeating: 0, count: 24))
        #expect(try SEVSignature(bytes: structure.bytes) == structure)
        #expect(try structure.p384().rawRepresentation == ecdsa.rawRepresentation)
        var padded = structure
        padded.r[71] = 1
        #expect(throws: LayoutError.self) { try padded.p384() }
        var offCurve = SEVPublicKey(key.publicKey)
        offCurve.qy[0] ^= 1
        #expect(throws: LayoutError.self) { try offCurve.p384() }
        var otherCurve = SEVPublicKey(key.publicKey)
        otherCurve.curve = 1
        #expect(throws: LayoutError.self) { try otherCurve.p384() }
    }
}
