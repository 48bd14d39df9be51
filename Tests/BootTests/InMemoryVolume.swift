import Crypto
import Sealing
import Volume

@testable import Boot

/// A behaving stand-in for the `Volume` library's LUKS2 operations, in memory: devices are blank, foreign or
/// "LUKS2" records holding the enrollment, the key the token MAC was made with and the key its keyslot opens
/// with. It refuses what libcryptsetup and the Volume library would refuse (formatting a non-blank device, a MAC
/// or keyslot that does not match the key) and records every call so tests can check what was tried, and when.
final class InMemoryVolume: BootVolume {
    enum Device: Equatable {
        case blank
        case foreign(String)
        case luks(uuid: String, enrollment: Enrollment, macKey: [UInt8], slotKey: [UInt8], integrity: Bool)
        /// A LUKS2 header without a `vhsm-snp` token (a first boot cut before its token), with the key its
        /// provisioning mark was made with, or nil for no mark.
        case unfinished(uuid: String, markKey: [UInt8]?)
    }

    /// Where `format` stops, as a power cut would stop it, leaving the device as that step left it.
    enum Cut: Equatable {
        case afterHeader, afterKeyslot, afterToken
    }

    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    /// The validated header copy: the device's record as it was read.
    struct Header: Equatable {
        var record: Device
    }

    var devices: [String: Device]
    /// When set, `format` fails with this message and leaves the device as it was.
    var formatFailure: String?
    var recoveryBlob = "-----BEGIN VHSM RECOVERY-----\nQUJD\n-----END VHSM RECOVERY-----"
    private(set) var calls: [String] = []
    private(set) var active: [String: String] = [:]
    /// Every sealing key handed to verifyMAC or unlock, in order.
    private(set) var keysTried: [[UInt8]] = []
    /// The recovery key of each device formatted with a recovery public key (what its recovery keyslot opens with).
    var recoveryKeys: [String: [UInt8]] = [:]
    /// The `vhsm-reenroll` token of each device, as `vhsm volume reenroll` (or the host) wrote it.
    var grants: [String: SealedSecret] = [:]
    /// Devices whose token says `"state":"provisioning"` (set by `format`, cleared by `markReady`).
    var provisioning: Set<String> = []
    /// When set, the next `format` stops there (and throws, as if the power went).
    var cut: Cut?

    init(_ devices: [String: Device]) { self.devices = devices }

    func probe(device: String) throws -> VolumeProbe {
        calls.append("probe \(device)")
        switch devices[device] {
        case nil: throw Refusal(description: "\(device): no such device")
        case .blank: return .blank
        case .foreign(let what): return .foreign(what)
        case .luks(let uuid, _, _, _, _), .unfinished(let uuid, _): return .luks(uuid: uuid)
        }
    }

    func format(
        device: String, uuid: String, enrollment: Enrollment, integrity: Bool, sealingKey: [UInt8],
        recoveryPublicKeyPEM: String?, replacingUnfinished: Bool
    ) throws -> String? {
        calls.append("format \(device)\(replacingUnfinished ? " replacing" : "")")
        if let formatFailure { throw Refusal(description: formatFailure) }
        if replacingUnfinished {
            // As LUKSVolume.format checks again: this launch's own token-less header for `uuid`.
            guard case .unfinished(uuid, sealingKey)? = devices[device] else {
                throw Refusal(description: "\(device) is not blank")
            }
        } else {
            guard devices[device] == .blank else { throw Refusal(description: "\(device) is not blank") }
        }
        switch cut {
        case .afterHeader?, .afterKeyslot?:
            cut = nil
            devices[device] = .unfinished(uuid: uuid, markKey: sealingKey)
            throw Refusal(description: "power cut")
        case .afterToken?, nil: break
        }
        devices[device] = .luks(
            uuid: uuid, enrollment: enrollment, macKey: sealingKey, slotKey: sealingKey, integrity: integrity)
        provisioning.insert(device)
        if cut == .afterToken {
            cut = nil
            throw Refusal(description: "power cut")
        }
        guard recoveryPublicKeyPEM != nil else { return nil }
        recoveryKeys[device] = Array(repeating: 0x5A, count: 32)
        return recoveryBlob
    }

    func validate(device: String) throws -> ValidatedVolume<Header> {
        calls.append("validate \(device)")
        guard let record = devices[device], case .luks(let uuid, let enrollment, _, _, let integrity) = record else {
            throw Refusal(description: "\(device) has no LUKS2 header")
        }
        return ValidatedVolume(
            device: device, uuid: uuid, enrollment: enrollment, integrity: integrity, header: Header(record: record),
            hasRecoveryKeyslot: recoveryKeys[device] != nil, reenrollGrant: grants[device],
            provisioning: provisioning.contains(device))
    }

    func unfinished(device: String) throws -> UnfinishedHeader? {
        calls.append("unfinished \(device)")
        switch devices[device] {
        case .unfinished(let uuid, let markKey)?: return UnfinishedHeader(uuid: uuid, marked: markKey != nil)
        case .luks?: return nil
        default: throw Refusal(description: "\(device) has no LUKS2 header")
        }
    }

    func verifyUnfinished(device: String, uuid: String, mode: SealMode, sealingKey: [UInt8]) throws {
        calls.append("verifyUnfinished \(device)")
        keysTried.append(sealingKey)
        guard case .unfinished(let found, let markKey)? = devices[device], found == uuid, let markKey else {
            throw Refusal(description: "\(device) is not blank")
        }
        guard markKey == sealingKey else { throw Refusal(description: "the provisioning mark does not verify") }
    }

    func initializeIntegrity(_ volume: ValidatedVolume<Header>, sealingKey: [UInt8]) throws {
        calls.append("initializeIntegrity \(volume.device)")
        try verifyMAC(volume, sealingKey: sealingKey)
    }

    func markReady(_ volume: ValidatedVolume<Header>, sealingKey: [UInt8]) throws {
        calls.append("markReady \(volume.device)")
        try verifyMAC(volume, sealingKey: sealingKey)
        provisioning.remove(volume.device)
    }

    func verifyMAC(_ volume: ValidatedVolume<Header>, sealingKey: [UInt8]) throws {
        calls.append("verifyMAC \(volume.device)")
        keysTried.append(sealingKey)
        guard case .luks(_, let enrollment, let macKey, _, _) = volume.header.record, macKey == sealingKey,
            enrollment == volume.enrollment
        else { throw Refusal(description: "token MAC mismatch") }
    }

    func unlock(_ volume: ValidatedVolume<Header>, sealingKey: [UInt8], name: String) throws -> String {
        calls.append("unlock \(volume.device) \(name)")
        keysTried.append(sealingKey)
        guard case .luks(_, _, _, let slotKey, _) = volume.header.record, slotKey == sealingKey else {
            throw Refusal(description: "No key available with this passphrase")
        }
        guard active[name] == nil else { throw Refusal(description: "\(name) is active already") }
        active[name] = volume.device
        return "/dev/mapper/\(name)"
    }

    func deactivate(name: String) throws {
        calls.append("deactivate \(name)")
        guard active.removeValue(forKey: name) != nil else { throw Refusal(description: "\(name) is not active") }
    }

    /// Like `replaceMachineKey`: reads the device again, refuses a recovery key that does not open its recovery
    /// keyslot, then records the new enrollment with the new machine key.
    func reenroll(
        _ volume: ValidatedVolume<Header>, recoveryKey: RecoveryKey, enrollment: Enrollment, sealingKey: [UInt8]
    ) throws -> Int {
        calls.append("reenroll \(volume.device)")
        guard case .luks(let uuid, _, _, _, let integrity)? = devices[volume.device] else {
            throw Refusal(description: "\(volume.device) has no LUKS2 header")
        }
        guard let stored = recoveryKeys[volume.device] else {
            throw Refusal(description: "recovery of \(volume.device): the header has no vhsm-recovery token")
        }
        guard recoveryKey.key.withUnsafeBytes({ Array($0) }) == stored else {
            throw Refusal(description: "the key opens no LUKS2 keyslot on \(volume.device) (keyslot 1)")
        }
        keysTried.append(sealingKey)
        devices[volume.device] = .luks(
            uuid: uuid, enrollment: enrollment, macKey: sealingKey, slotKey: sealingKey, integrity: integrity)
        return 2
    }

    func removeReenrollGrant(device: String) throws {
        calls.append("removeReenrollGrant \(device)")
        grants[device] = nil
    }

    /// Rewrites the token's enrollment as a host could (the MAC stays the old one).
    func tamperEnrollment(of device: String, _ change: (inout Enrollment) -> Void) {
        guard case .luks(let uuid, var enrollment, let macKey, let slotKey, let integrity) = devices[device] else {
            return
        }
        change(&enrollment)
        devices[device] = .luks(
            uuid: uuid, enrollment: enrollment, macKey: macKey, slotKey: slotKey, integrity: integrity)
    }
}
