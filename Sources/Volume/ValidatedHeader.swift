internal import Crypto

/// A LUKS2 header area read once from the device and accepted by `Metadata.validate`. Everything libcryptsetup
/// does with it afterwards runs on a RAM copy of exactly these bytes (`crypt_init_data_device(copy, device)`).
public struct ValidatedHeader: Sendable {
    /// The data device.
    public let path: String
    /// The header area as read (`Layout.headerAreaSize` bytes).
    let area: [UInt8]
    public let metadata: Metadata

    init(path: String, area: [UInt8], metadata: Metadata) {
        self.path = path
        self.area = area
        self.metadata = metadata
    }

    /// Validates a header area read from `path` (`Metadata.validate`): what `LUKSVolume.readHeader` does once it
    /// has read the bytes, and the whole of it for the `luks2-header` fuzz target.
    package static func validating(area: [UInt8], path: String) throws(VolumeError) -> ValidatedHeader {
        ValidatedHeader(path: path, area: area, metadata: try Metadata.validate(area: area, path: path))
    }

    public var uuid: String { metadata.uuid }

    /// The enrolment: an **unauthenticated hint** until `verifyMAC` succeeded. The boot agent reads the seal mode,
    /// field select and TCB from it to request the sealing key, then verifies.
    public var snpToken: SNPToken {
        // `readHeader` validates with requireSNPToken, so it is always there.
        metadata.snpToken!
    }

    /// Checks that `keys` belong to this volume and mode, and that the `vhsm-snp` token's MAC verifies:
    /// the header parameters are the ones enrolled on a machine that derives the same sealing key.
    public func verifyMAC(_ keys: VolumeKeys) throws(VolumeError) {
        guard keys.volumeUUID == uuid else { throw .volumeMismatch(path: path, header: uuid, keys: keys.volumeUUID) }
        guard keys.mode == snpToken.binding.mode else {
            throw .sealModeMismatch(path: path, token: snpToken.binding.mode, keys: keys.mode)
        }
        let valid: Bool
        do { valid = try HeaderMAC.verify(metadata, token: snpToken, key: keys.macKey) } catch {
            throw error.error(path: path)
        }
        guard valid else { throw .tokenMACMismatch(path: path) }
    }

    /// Verifies the MAC, then checks that the machine key opens the token's keyslot, without activating
    /// (`crypt_activate_by_passphrase` with no name). Returns the keyslot.
    @discardableResult
    public func checkKey(_ keys: VolumeKeys) throws(VolumeError) -> Int {
        try verifyMAC(keys)
        return try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            return try device.activate(name: nil, keyslot: snpToken.keyslot, passphrase: keys.passphrase)
        }
    }

    /// Verifies the MAC, then activates `/dev/mapper/<name>` from the validated copy with the machine keyslot.
    /// Returns the keyslot. Needs device-mapper (the guest).
    @discardableResult
    public func unlock(as name: String, keys: VolumeKeys, options: UnlockOptions = []) throws(VolumeError) -> Int {
        try verifyMAC(keys)
        return try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            return try device.activate(
                name: name, keyslot: snpToken.keyslot, passphrase: keys.passphrase, options: options)
        }
    }

    /// The one-time dm-integrity initialisation after `format` with integrity (guest only): a private mapping
    /// without journal, every sector written once so each has a valid tag, then closed. `progress(done, total)`
    /// is called after each MiB and may return false to stop (the volume then needs this again).
    public func initializeIntegrity(
        keys: VolumeKeys, name: String = "vhsm-integrity-init", progress: (UInt64, UInt64) -> Bool
    ) throws(VolumeError) {
        guard metadata.integrity != nil else {
            throw .invalidArgument("\(path) has no integrity protection; there is nothing to initialise")
        }
        try verifyMAC(keys)
        try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            try device.activate(
                name: name, keyslot: snpToken.keyslot, passphrase: keys.passphrase, options: [.private, .noJournal])
            let mapped = "/dev/mapper/\(name)"
            var failure: VolumeError?
            do throws(VolumeError) {
                let size = try DeviceFile(path: mapped).size()
                try device.wipe(device: mapped, length: UInt64(size), progress: progress)
            } catch {
                failure = error
            }
            // Close the temporary mapping whatever happened; the first failure is the one reported.
            do throws(VolumeError) { try CryptLibrary.deactivateUnlocked(name: name) } catch {
                failure = failure ?? error
            }
            if let failure { throw failure }
        }
    }
}
