import Crypto
import Testing

@testable import Volume

/// `VerityRoot` with the parameters vhsm-init gives the kernel, checked by libcryptsetup's userspace verification
/// (what `veritysetup verify` runs) on a small image whose tree this test builds.
@Suite struct VerityTests {
    /// 00 01 … 1f.
    static let salt = (0..<32).map { UInt8($0) }
    /// `veritysetup format --no-superblock --hash-offset=12288 --salt=000102…1f tiny.img tiny.img` on three data
    /// blocks filled with 01, 02 and 03 prints this root hash (cryptsetup 2.6.1).
    static let veritysetupRootHash = hexBytes("9f8aa9c36ed345cc9c7d6c0e230cb2440bbdd9865041929a5bf3967de5f307ef")

    static func hexBytes(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            bytes.append(UInt8(text[index..<next], radix: 16)!)
            index = next
        }
        return bytes
    }

    /// Three data blocks, then the one-level tree at 12288: SHA-256(salt ‖ block) for each, zero-padded to a block.
    static func image() throws -> TemporaryImage {
        let image = try TemporaryImage(size: 4 * 4096, name: "root.img")
        var level: [UInt8] = []
        for index in 0..<3 {
            let block = [UInt8](repeating: UInt8(index + 1), count: 4096)
            try image.write(block, at: index * 4096)
            level += SHA256.hash(data: salt + block)
        }
        try image.write(level + [UInt8](repeating: 0, count: 4096 - level.count), at: 3 * 4096)
        return image
    }

    static func root(_ image: TemporaryImage, rootHash: [UInt8] = veritysetupRootHash) throws -> VerityRoot {
        try VerityRoot(
            dataDevice: image.path, hashDevice: image.path, rootHash: rootHash, salt: salt, dataBlocks: 3,
            hashOffset: 3 * 4096)
    }

    @Test func theTreeBuiltHereHasVeritysetupsRootHash() throws {
        let image = try Self.image()
        #expect(try Self.root(image).storedRootHash() == Self.veritysetupRootHash)
    }

    @Test func libcryptsetupVerifiesTheImageWithTheConfiguredParameters() throws {
        let image = try Self.image()
        #expect(throws: Never.self) { try Self.root(image).verify() }
    }

    @Test func anotherRootHashIsRefused() throws {
        let image = try Self.image()
        var other = Self.veritysetupRootHash
        other[0] ^= 1
        let root = try Self.root(image, rootHash: other)
        #expect {
            try root.verify()
        } throws: { error in
            guard case .verityMismatch(let path, _) = error as? VolumeError else { return false }
            return path == image.path
        }
        // The tree itself is intact: its top still hashes to what veritysetup printed.
        #expect(try root.storedRootHash() == Self.veritysetupRootHash)
    }

    @Test(arguments: [0, 4096 + 17, 3 * 4096 - 1])
    func oneChangedDataByteIsRefused(offset: Int) throws {
        let image = try Self.image()
        let byte = try image.read(offset: offset, count: 1)[0]
        try image.write([byte ^ 0x80], at: offset)
        #expect(throws: VolumeError.self) { try Self.root(image).verify() }
        #expect(try Self.root(image).storedRootHash() == Self.veritysetupRootHash)
    }

    @Test func aChangedTreeBlockChangesTheStoredRootHash() throws {
        let image = try Self.image()
        try image.write([0xFF], at: 3 * 4096 + 5)
        #expect(throws: VolumeError.self) { try Self.root(image).verify() }
        #expect(try Self.root(image).storedRootHash() != Self.veritysetupRootHash)
    }

    @Test func parametersTheKernelWouldRefuseAreRefusedFirst() {
        func make(
            rootHash: [UInt8] = VerityTests.veritysetupRootHash, salt: [UInt8] = VerityTests.salt,
            dataBlocks: UInt64 = 3,
            hashOffset: UInt64 = 3 * 4096, hashDevice: String = "/dev/vdb"
        ) throws(VolumeError) -> VerityRoot {
            try VerityRoot(
                dataDevice: "/dev/vdb", hashDevice: hashDevice, rootHash: rootHash, salt: salt,
                dataBlocks: dataBlocks, hashOffset: hashOffset)
        }
        #expect(throws: VolumeError.self) { try make(rootHash: Array(Self.veritysetupRootHash.prefix(20))) }
        #expect(throws: VolumeError.self) { try make(salt: [UInt8](repeating: 1, count: 257)) }
        #expect(throws: VolumeError.self) { try make(dataBlocks: 0) }
        #expect(throws: VolumeError.self) { try make(dataBlocks: UInt64.max / 1000) }
        #expect(throws: VolumeError.self) { try make(hashOffset: 3 * 4096 + 512) }
        // The tree may not overlap the data on the same device; on another device it may start anywhere.
        #expect(
            throws: VolumeError.invalidArgument(
                "the dm-verity hash tree at byte 8192 of /dev/vdb overlaps its 12288 bytes of data")
        ) { try make(hashOffset: 2 * 4096) }
        #expect(throws: Never.self) { try make(hashOffset: 0, hashDevice: "/dev/vdc") }
        #expect(throws: Never.self) { try make(salt: []) }
        #expect((try? make())?.dataBytes == 12288)
    }
}
