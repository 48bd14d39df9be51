internal import Crypto
import StrictJSON

/// A LUKS2 volume (block device or image file) as vhsm formats, validates and unlocks it.
///
/// Every operation opens the device itself and keeps no handle, so the value is `Sendable`; the libcryptsetup
/// calls inside are serialised process-wide.
public struct LUKSVolume: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// What `format` needs besides the keys.
    public struct FormatRequest: Sendable {
        /// Lowercase canonical UUID (the passphrase derivation's salt).
        public var uuid: String
        /// Enable `hmac(sha256)` dm-integrity. Needs device-mapper for the format itself, and afterwards a
        /// one-time `ValidatedHeader.initializeIntegrity` before the volume is used.
        public var integrity: Bool
        public var binding: SNPBinding
        /// The operator's recovery public key. `nil`: no recovery keyslot and no `vhsm-recovery` token (the volume
        /// is then lost with the machine key; DESIGN.md §4 expects a recovery key in the measured configuration).
        public var recoveryRecipient: RecoveryRecipient?

        public init(
            uuid: String, integrity: Bool = false, binding: SNPBinding, recoveryRecipient: RecoveryRecipient?
        ) {
            self.uuid = uuid
            self.integrity = integrity
            self.binding = binding
            self.recoveryRecipient = recoveryRecipient
        }
    }

    public struct FormatResult: Sendable {
        public var uuid: String
        public var machineKeyslot: Int
        /// `nil` when formatted without a recovery recipient.
        public var recoveryKeyslot: Int?
        /// The armored recovery blob (`-----BEGIN VHSM RECOVERY-----`): print it once. `nil` without recipient.
        public var recoveryBlob: String?
        /// True when integrity is on: run `initializeIntegrity` (in the guest) before first use.
        public var needsIntegrityInitialization: Bool
    }

    /// Formats a **blank** volume (see `VolumeState.blank`): LUKS2 per `Layout`, the machine keyslot for
    /// `keys.passphrase`, a recovery keyslot for a fresh random 256-bit key (which leaves only HPKE-encrypted to
    /// the recovery recipient) and its `vhsm-recovery` token, then the `vhsm-snp` token with its MAC. Before
    /// returning it reads the header back, validates it like a boot would and checks that the machine key opens it.
    ///
    /// If anything fails after writing started, the header area is zeroed again, so the volume stays blank.
    public func format(_ request: FormatRequest, keys: VolumeKeys) throws(VolumeError) -> FormatResult {
        guard Metadata.isCanonicalUUID(request.uuid) else {
            throw .invalidArgument("volume UUID '\(request.uuid)' is not a lowercase canonical UUID")
        }
        guard keys.volumeUUID == request.uuid else {
            throw .volumeMismatch(path: path, header: request.uuid, keys: keys.volumeUUID)
        }
        guard keys.mode == request.binding.mode else {
            throw .sealModeMismatch(path: path, token: request.binding.mode, keys: keys.mode)
        }
        do { try request.binding.check() } catch {
            throw .invalidArgument("the SNP binding has \(error.field) \(error.found) (expected \(error.expected))")
        }
        let file = DeviceFile(path: path)
        let size = try file.size()
        guard size >= Int64(Layout.minimumDeviceSize) else {
            throw .tooSmall(path: path, size: size, minimum: Int64(Layout.minimumDeviceSize))
        }
        switch try probe() {
        case .blank: break
        case .luks2(let uuid): throw .notBlank(path: path, found: "a LUKS2 header, UUID \(uuid)")
        case .foreign(let found): throw .notBlank(path: path, found: found)
        }

        do throws(VolumeError) {
            return try CryptLibrary.run { () throws(VolumeError) in
                let device = try CryptDevice(device: path)
                try device.formatLUKS2(uuid: request.uuid, integrity: request.integrity)
                let machine = try device.addKeyslotForNewVolumeKey(passphrase: keys.passphrase)
                var recovery: RecoveryToken?
                if let recipient = request.recoveryRecipient {
                    let recoveryKey = RecoveryKey.generate()
                    let slot = try device.addKeyslotForNewVolumeKey(passphrase: recoveryKey.passphrase)
                    let token = try recipient.seal(recoveryKey, volumeUUID: request.uuid, keyslot: slot)
                    try device.setToken(id: nil, json: token.json.serialized)
                    recovery = token
                }

                let partial = try Metadata.validate(
                    area: try file.read(offset: 0, count: Layout.headerAreaSize), path: path, requireSNPToken: false)
                var token = SNPToken(keyslot: machine, binding: request.binding, mac: [])
                do throws(Rejection) {
                    token.mac = try HeaderMAC.compute(partial, token: token, key: keys.macKey)
                } catch {
                    throw error.error(path: path)
                }
                try device.setToken(id: nil, json: token.json.serialized)
                return FormatResult(
                    uuid: request.uuid, machineKeyslot: machine, recoveryKeyslot: recovery?.keyslot,
                    recoveryBlob: recovery?.armored(volumeUUID: request.uuid),
                    needsIntegrityInitialization: request.integrity)
            }.verified(by: try readHeader(), keys: keys)
        } catch {
            // Leave the volume blank again: it was blank before, and a half-written header would be "foreign".
            try? file.write([UInt8](repeating: 0, count: Layout.headerAreaSize), ranges: [0..<Layout.headerAreaSize])
            throw error
        }
    }

    /// Reads the header area once (`Layout.headerAreaSize` bytes) and validates it (DESIGN.md §5).
    public func readHeader() throws(VolumeError) -> ValidatedHeader {
        let file = DeviceFile(path: path)
        let size = try file.size()
        guard size >= Int64(Layout.headerAreaSize) else {
            throw .notLUKS2(path: path, found: "the device is only \(size) bytes")
        }
        let area = try file.read(offset: 0, count: Layout.headerAreaSize)
        return try ValidatedHeader.validating(area: area, path: path)
    }

    /// Deactivates a mapping made by `ValidatedHeader.unlock`.
    public static func deactivate(name: String) throws(VolumeError) {
        try CryptLibrary.deactivate(name: name)
    }
}

extension LUKSVolume.FormatResult {
    /// The format's own check: the header reads back valid, its MAC verifies and the machine key opens it.
    fileprivate func verified(by header: ValidatedHeader, keys: VolumeKeys) throws(VolumeError) -> Self {
        let slot = try header.checkKey(keys)
        guard slot == machineKeyslot, header.metadata.recoveryToken?.keyslot == recoveryKeyslot else {
            throw .invalidArgument("the freshly formatted header of \(header.path) does not read back as written")
        }
        return self
    }
}
