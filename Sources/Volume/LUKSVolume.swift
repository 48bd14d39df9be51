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
        /// Format over this volume's own unfinished header instead of a blank device: a LUKS2 header without a
        /// `vhsm-snp` token whose provisioning mark verifies under `keys` for `uuid` (`checkUnfinished`). Anything
        /// else is still refused as not blank.
        public var replacingUnfinished: Bool

        public init(
            uuid: String, integrity: Bool = false, binding: SNPBinding, recoveryRecipient: RecoveryRecipient?,
            replacingUnfinished: Bool = false
        ) {
            self.uuid = uuid
            self.integrity = integrity
            self.binding = binding
            self.recoveryRecipient = recoveryRecipient
            self.replacingUnfinished = replacingUnfinished
        }
    }

    /// The points of `format` after which its writes are on the device (tests cut the power there).
    public enum FormatStep: String, Sendable {
        /// `crypt_format`: both binary headers with the provisioning mark, no keyslot.
        case header = "after-header"
        /// The machine keyslot.
        case keyslot = "after-keyslot"
        /// The `vhsm-snp` token in state provisioning.
        case token = "after-token"
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
    /// The binary headers carry the provisioning mark and the token `"state":"provisioning"` until `markReady`.
    /// If anything fails after writing started, the header area is zeroed again, so the volume stays blank.
    /// `checkpoint` is called after each step's write (see `FormatStep`).
    public func format(
        _ request: FormatRequest, keys: VolumeKeys, checkpoint: (FormatStep) -> Void = { _ in }
    ) throws(VolumeError) -> FormatResult {
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
        case .luks2 where request.replacingUnfinished: try checkUnfinished(keys: keys)
        case .luks2(let uuid): throw .notBlank(path: path, found: "a LUKS2 header, UUID \(uuid)")
        case .foreign(let found): throw .notBlank(path: path, found: found)
        }
        let mark = ProvisioningMark.subsystem(uuid: request.uuid, key: keys.macKey)

        do throws(VolumeError) {
            return try CryptLibrary.run { () throws(VolumeError) in
                let device = try CryptDevice(device: path)
                try device.formatLUKS2(
                    uuid: request.uuid, integrity: request.integrity, label: ProvisioningMark.label, subsystem: mark)
                checkpoint(.header)
                let machine = try device.addKeyslotForNewVolumeKey(passphrase: keys.passphrase)
                checkpoint(.keyslot)
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
                let token = SNPToken(keyslot: machine, binding: request.binding, provisioning: true, mac: [])
                try device.setSNPToken(token, id: nil, over: partial, key: keys.macKey, path: path)
                checkpoint(.token)
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

    /// Proves that the device holds this volume's own unfinished first boot: a LUKS2 header without a `vhsm-snp`
    /// token, with the provisioning mark for its UUID under `keys.macKey`. Throws `notBlank` naming what is wrong.
    public func checkUnfinished(keys: VolumeKeys) throws(VolumeError) {
        let file = DeviceFile(path: path)
        let (uuid, mark, hasSNPToken) = try Metadata.unfinished(
            area: try file.read(offset: 0, count: Layout.headerAreaSize), path: path)
        guard !hasSNPToken else {
            throw .notBlank(path: path, found: "a LUKS2 header with a vhsm-snp token, UUID \(uuid)")
        }
        guard uuid == keys.volumeUUID else {
            throw .volumeMismatch(path: path, header: uuid, keys: keys.volumeUUID)
        }
        guard let mark else {
            throw .notBlank(path: path, found: "a LUKS2 header without the provisioning mark, UUID \(uuid)")
        }
        guard ProvisioningMark.verify(mark, uuid: uuid, key: keys.macKey) else {
            throw .notBlank(
                path: path,
                found: "a LUKS2 header whose provisioning mark does not verify with this launch's key, UUID \(uuid)")
        }
    }

    /// What a LUKS2 header without a `vhsm-snp` token shows before any key: its UUID, whether it has a
    /// provisioning mark (unverified) and whether it has a token after all (then `readHeader` applies).
    public func readUnfinished() throws(VolumeError) -> (uuid: String, marked: Bool, hasSNPToken: Bool) {
        let (uuid, mark, hasSNPToken) = try Metadata.unfinished(
            area: try DeviceFile(path: path).read(offset: 0, count: Layout.headerAreaSize), path: path)
        return (uuid, mark != nil, hasSNPToken)
    }

    /// Ends provisioning: on a copy of the validated header, the `vhsm-snp` token without its state (a new MAC)
    /// and an empty label and subsystem; written back like a key change, read back, validated and checked.
    /// A volume already ready is left as it is.
    public func markReady(keys: VolumeKeys) throws(VolumeError) {
        let header = try readHeader()
        try header.checkKey(keys)
        guard header.snpToken.provisioning || header.metadata.provisioningMark != nil else { return }
        try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(header.area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            try device.clearLabel()
            let cleared = try Metadata.validate(area: try copy.read(), path: path)
            var token = header.snpToken
            token.provisioning = false
            try device.setSNPToken(token, id: cleared.snpTokenID, over: cleared, key: keys.macKey, path: path)
            try writeBack(try copy.read())
        }
        let ready = try readHeader()
        try ready.checkKey(keys)
        guard !ready.snpToken.provisioning, ready.metadata.provisioningMark == nil else {
            throw .invalidArgument("the header of \(path) still says provisioning after it was marked ready")
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
