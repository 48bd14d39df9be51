import Sealing
import Volume

/// What `vhsm-init` needs from the LUKS2 layer: the seam to the `Volume` library (libcryptsetup).
///
/// The boot agent decides (blank → format; ours → compare, verify, unlock; anything else → refuse); an
/// implementation only carries out one step per call and throws errors whose `description` is one sentence
/// naming the device. Sealing keys are passed in, borrowed: the caller zeroes them after the call, and an
/// implementation must not keep a copy. `VolumeKeys.derive(sealingKey:volumeUUID:mode:)` turns a sealing key
/// into this volume's passphrase.
protocol BootVolume {
    /// The validated in-RAM copy of a LUKS2 header, opaque to the boot agent. Unlocking takes one, so nothing
    /// can be activated from a header that was not validated.
    associatedtype Header

    /// Classifies the device without writing to it.
    func probe(device: String) throws -> VolumeProbe

    /// Formats a blank device as LUKS2 (aes-xts-plain64, 512-bit key, 4096-byte sectors, `hmac(sha256)`
    /// integrity when asked) with `uuid`; adds the machine keyslot (PBKDF2-SHA256, 1000 iterations) for the
    /// passphrase derived from `sealingKey` under `enrollment.mode`; writes the `vhsm-snp` token recording
    /// `enrollment` with its MAC keyed from `sealingKey`; and, given a recovery public key (PEM), a random
    /// recovery keyslot and its `vhsm-recovery` token. Returns the armored recovery blob to print once, or nil.
    /// The binary headers carry the provisioning mark and the token says `provisioning` until `markReady`.
    /// Must refuse a device that is not blank, except, with `replacingUnfinished`, a header `verifyUnfinished`
    /// accepts for `uuid` and this key (checked again by the implementation). Does not run the integrity wipe.
    func format(
        device: String, uuid: String, enrollment: Enrollment, integrity: Bool, sealingKey: [UInt8],
        recoveryPublicKeyPEM: String?, replacingUnfinished: Bool
    ) throws -> String?

    /// A LUKS2 header without a `vhsm-snp` token (a first boot cut before writing it): its UUID and whether it has
    /// a provisioning mark, unverified. Nil when the header has a `vhsm-snp` token (`validate` applies).
    func unfinished(device: String) throws -> UnfinishedHeader?

    /// Proves the token-less header of `device` is this launch's own unfinished first boot: its provisioning mark
    /// verifies under the MAC key from `sealingKey` for `uuid` and `mode`.
    func verifyUnfinished(device: String, uuid: String, mode: SealMode, sealingKey: [UInt8]) throws

    /// The one-time dm-integrity wipe of a volume formatted with integrity, after its MAC verified.
    func initializeIntegrity(_ volume: ValidatedVolume<Header>, sealingKey: [UInt8]) throws

    /// Ends provisioning: the token without its state (MAC'd again) and the provisioning mark cleared.
    func markReady(_ volume: ValidatedVolume<Header>, sealingKey: [UInt8]) throws

    /// Reads the header once into RAM, validates it against exactly what `format` writes (DESIGN §5) and
    /// reads the `vhsm-snp` token. Nothing here proves the token authentic; `verifyMAC` does.
    func validate(device: String) throws -> ValidatedVolume<Header>

    /// Verifies the token's MAC over the canonical header parameters with a key from `sealingKey`.
    func verifyMAC(_ volume: ValidatedVolume<Header>, sealingKey: [UInt8]) throws

    /// Activates the mapping `name` from the validated copy (`crypt_init_data_device(copy, device)`) with the
    /// passphrase derived from `sealingKey`; returns the mapped device, `/dev/mapper/<name>`.
    func unlock(_ volume: ValidatedVolume<Header>, sealingKey: [UInt8], name: String) throws -> String

    /// Removes the mapping `name` (`crypt_deactivate`).
    func deactivate(name: String) throws

    /// Moves the volume to this launch (`LUKSVolume.replaceMachineKey`, crash-safe in two phases): with
    /// `recoveryKey` as the authority (it must open the recovery keyslot, checked by libcryptsetup), a new machine
    /// keyslot for the passphrase derived from `sealingKey` under `enrollment.mode`, and a `vhsm-snp` token
    /// recording `enrollment` with its MAC, the old machine keyslot destroyed last. Returns the new keyslot.
    /// Works from the header as it is on the device now (read and validated again), not from `volume`'s copy.
    func reenroll(
        _ volume: ValidatedVolume<Header>, recoveryKey: RecoveryKey, enrollment: Enrollment, sealingKey: [UInt8]
    ) throws -> Int

    /// Removes the `vhsm-reenroll` token (the operator's recovery grant), if there is one.
    func removeReenrollGrant(device: String) throws
}

/// What a device holds, as far as `probe` can tell without a key.
enum VolumeProbe: Equatable, Sendable {
    /// Nothing recognisable was ever written (no signature, all zeros where one would be): safe to format.
    case blank
    /// A LUKS2 header with this UUID.
    case luks(uuid: String)
    /// Anything else (a filesystem, LUKS1, a partition table, unreadable data): never formatted.
    case foreign(String)
}

/// What a token-less LUKS2 header shows before any key.
struct UnfinishedHeader: Equatable, Sendable {
    var uuid: String
    /// It has a provisioning mark in its label and subsystem (not yet verified).
    var marked: Bool
}

/// A header that passed validation, with what its token says.
struct ValidatedVolume<Header> {
    var device: String
    /// The LUKS2 UUID (lower case).
    var uuid: String
    var enrollment: Enrollment
    /// The header's data segment has `hmac(sha256)` integrity (a parameter the token MAC covers).
    var integrity: Bool
    var header: Header
    /// The header has a `vhsm-recovery` token (and its keyslot).
    var hasRecoveryKeyslot: Bool
    /// The operator's recovery grant from a `vhsm-reenroll` token (unauthenticated until it opens with this
    /// launch's request key and answers its challenge).
    var reenrollGrant: SealedSecret?
    /// The token says `"state":"provisioning"` (unauthenticated until `verifyMAC`): the first boot did not finish.
    var provisioning: Bool

    init(
        device: String, uuid: String, enrollment: Enrollment, integrity: Bool = false, header: Header,
        hasRecoveryKeyslot: Bool = false, reenrollGrant: SealedSecret? = nil, provisioning: Bool = false
    ) {
        self.provisioning = provisioning
        self.device = device
        self.uuid = uuid
        self.enrollment = enrollment
        self.integrity = integrity
        self.header = header
        self.hasRecoveryKeyslot = hasRecoveryKeyslot
        self.reenrollGrant = reenrollGrant
    }
}
