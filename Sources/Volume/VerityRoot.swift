internal import Crypto

/// A dm-verity root filesystem as `vhsm-init` switches into it. Every parameter comes from the measured
/// configuration and none from the disk: no verity superblock is read (the host writes the disk), libcryptsetup is
/// given the values with `CRYPT_VERITY_NO_HEADER`, and the kernel's `dm-verity` target checks each block it reads
/// against the tree and the tree against `rootHash`.
///
/// Fixed here (so measured with the binary): SHA-256, hash format 1 (the salt is hashed before each block),
/// 4096-byte data and hash blocks, no forward error correction: `veritysetup format`'s defaults. Configured:
/// the root hash, the salt, the number of data blocks, and where the tree starts on which device.
public struct VerityRoot: Equatable, Sendable {
    public static let hashAlgorithm = "sha256"
    public static let hashType: UInt32 = 1
    public static let blockSize = 4096
    /// SHA-256.
    public static let rootHashBytes = 32
    /// libcryptsetup's and the kernel's limit.
    public static let maximumSaltBytes = 256

    public let dataDevice: String
    /// The device holding the hash tree; `dataDevice` itself when the tree follows the data.
    public let hashDevice: String
    public let rootHash: [UInt8]
    /// Empty: no salt (`veritysetup format --salt=-`).
    public let salt: [UInt8]
    public let dataBlocks: UInt64
    /// Byte offset of the tree's first (top-level) block on `hashDevice`.
    public let hashOffset: UInt64

    /// Refuses values the kernel would refuse, and a tree that overlaps the data on the same device.
    public init(
        dataDevice: String, hashDevice: String, rootHash: [UInt8], salt: [UInt8], dataBlocks: UInt64,
        hashOffset: UInt64
    ) throws(VolumeError) {
        guard rootHash.count == Self.rootHashBytes else {
            throw .invalidArgument(
                "a dm-verity root hash for \(Self.hashAlgorithm) is \(Self.rootHashBytes) bytes, not \(rootHash.count)")
        }
        guard salt.count <= Self.maximumSaltBytes else {
            throw .invalidArgument("a dm-verity salt is at most \(Self.maximumSaltBytes) bytes, not \(salt.count)")
        }
        let block = UInt64(Self.blockSize)
        let (dataBytes, overflow) = dataBlocks.multipliedReportingOverflow(by: block)
        guard dataBlocks > 0, !overflow, dataBytes <= UInt64(Int64.max) else {
            throw .invalidArgument("dm-verity data blocks \(dataBlocks) is not a usable count of \(block)-byte blocks")
        }
        guard hashOffset % block == 0, hashOffset <= UInt64(Int64.max) - block else {
            throw .invalidArgument("the dm-verity hash offset \(hashOffset) is not a multiple of \(block) bytes")
        }
        guard dataDevice != hashDevice || hashOffset >= dataBytes else {
            throw .invalidArgument(
                "the dm-verity hash tree at byte \(hashOffset) of \(hashDevice) overlaps its \(dataBytes) bytes of "
                    + "data")
        }
        self.dataDevice = dataDevice
        self.hashDevice = hashDevice
        self.rootHash = rootHash
        self.salt = salt
        self.dataBlocks = dataBlocks
        self.hashOffset = hashOffset
    }

    /// The size of the verified device in bytes.
    public var dataBytes: UInt64 { dataBlocks * UInt64(Self.blockSize) }

    /// Activates the read-only dm-verity mapping `name` (guest only: needs device-mapper and `dm-verity`).
    /// Returns `/dev/mapper/<name>`. Activation checks nothing on the disk: the kernel checks each read.
    public func activate(as name: String) throws(VolumeError) -> String {
        try run(name: name, checkHash: false)
        return "/dev/mapper/\(name)"
    }

    /// Verifies the whole tree and every data block in userspace (libcryptsetup's `CRYPT_VERITY_CHECK_HASH`,
    /// what `veritysetup verify` does), with the same parameters `activate` gives the kernel. Throws
    /// `verityMismatch` when anything differs.
    public func verify() throws(VolumeError) {
        try run(name: nil, checkHash: true)
    }

    /// The root hash of the tree as it is on `hashDevice`: SHA-256 of the salt and the top-level hash block.
    /// Only for messages: when it equals `rootHash`, the tree's top is intact and a changed byte lies below it.
    public func storedRootHash() throws(VolumeError) -> [UInt8] {
        let top = try DeviceFile(path: hashDevice).read(offset: Int64(hashOffset), count: Self.blockSize)
        var hash = SHA256()
        hash.update(data: salt)
        hash.update(data: top)
        return Array(hash.finalize())
    }

    private func run(name: String?, checkHash: Bool) throws(VolumeError) {
        try CryptLibrary.run { () throws(VolumeError) in
            let device = try CryptDevice(verityHash: hashDevice, data: dataDevice)
            try device.formatVerity(
                data: dataDevice, hashName: Self.hashAlgorithm, hashType: Self.hashType,
                blockSize: UInt32(Self.blockSize), dataBlocks: dataBlocks, hashOffset: hashOffset, salt: salt,
                checkHash: checkHash)
            try device.activateVerity(name: name, rootHash: rootHash)
        }
    }
}
