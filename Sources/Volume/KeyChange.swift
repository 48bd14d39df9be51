internal import Crypto
import StrictJSON

extension LUKSVolume {
    /// What proves the right to enrol a new machine key.
    public enum KeyAuthority: Sendable {
        /// The current machine keys: the token MAC must verify and the key must open the token's keyslot.
        case machine(VolumeKeys)
        /// The recovery key (after a chip, TCB or image change): it must open the recovery keyslot.
        case recovery(RecoveryKey)
    }

    /// Replaces the machine keyslot with one for `replacement`, and the `vhsm-snp` token with one for `binding`.
    ///
    /// Never leaves the volume without a working machine or recovery keyslot, even if interrupted:
    /// 1. on a RAM copy of the validated header: add the new keyslot, check that it opens, point the token (with a
    ///    new MAC) at it; write the copy back (keyslots area, secondary, primary header, each flushed); read the
    ///    header back, validate it and check the new key opens it;
    /// 2. only then, on a copy of that header, destroy the old machine keyslot, write back, and check again.
    /// Returns the new keyslot.
    public func replaceMachineKey(
        authority: KeyAuthority, replacement: VolumeKeys, binding: SNPBinding
    ) throws(VolumeError) -> Int {
        let header = try readHeader()
        guard replacement.volumeUUID == header.uuid else {
            throw .volumeMismatch(path: path, header: header.uuid, keys: replacement.volumeUUID)
        }
        guard replacement.mode == binding.mode else {
            throw .sealModeMismatch(path: path, token: binding.mode, keys: replacement.mode)
        }
        do { try binding.check() } catch {
            throw .invalidArgument("the SNP binding has \(error.field) \(error.found) (expected \(error.expected))")
        }
        let oldSlot = header.snpToken.keyslot
        let existing: SymmetricKey
        switch authority {
        case .machine(let keys):
            try header.checkKey(keys)
            existing = keys.passphrase
        case .recovery(let key):
            guard let slot = header.metadata.recoveryToken?.keyslot else {
                throw .recovery(path: path, "the header has no vhsm-recovery token")
            }
            try header.checkRecoveryKey(key, keyslot: slot)
            existing = key.passphrase
        }

        // A keyslot that neither token names is left over from an interrupted replacement (its successor was
        // verified before the token moved). Make room for the new keyslot by removing it first.
        let stale = Set(header.metadata.keyslots.map(\.id)).subtracting(header.activeKeyslots)
        if !stale.isEmpty, header.metadata.keyslots.count >= Layout.maximumKeyslots {
            try destroyKeyslots(stale, in: header)
        }
        let current = try readHeader()

        // Phase 1: add and enrol the replacement; the old keyslot stays.
        let newSlot: Int = try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(current.area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            try device.usePBKDF2()
            let slot = try device.addKeyslot(existing: existing, new: replacement.passphrase)
            try device.activate(name: nil, keyslot: slot, passphrase: replacement.passphrase)
            let added = try Metadata.validate(area: try copy.read(), path: path)
            // A volume still provisioning stays so (its mark stays too); the state is under the new MAC.
            let token = SNPToken(keyslot: slot, binding: binding, provisioning: current.snpToken.provisioning, mac: [])
            try device.setSNPToken(token, id: added.snpTokenID, over: added, key: replacement.macKey, path: path)
            try writeBack(try copy.read())
            return slot
        }
        guard try readHeader().checkKey(replacement) == newSlot else {
            throw .wrongKey(path: path, keyslot: newSlot)
        }

        // Phase 2: the replacement is on disk and verified; now the old machine keyslot (and any leftover) may go.
        let enrolled = try readHeader()
        try destroyKeyslots(
            Set(enrolled.metadata.keyslots.map(\.id)).subtracting(enrolled.activeKeyslots), in: enrolled)
        guard try readHeader().checkKey(replacement) == newSlot, oldSlot != newSlot else {
            throw .wrongKey(path: path, keyslot: newSlot)
        }
        return newSlot
    }

    /// Destroys `keyslots` on a copy of `header` and writes the copy back. Never the token's or recovery keyslot.
    private func destroyKeyslots(_ keyslots: Set<Int>, in header: ValidatedHeader) throws(VolumeError) {
        guard !keyslots.isEmpty else { return }
        precondition(keyslots.isDisjoint(with: header.activeKeyslots), "refusing to destroy a keyslot a token names")
        try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(header.area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            for slot in keyslots.sorted() { try device.destroyKeyslot(slot) }
            try writeBack(try copy.read())
        }
    }

    /// Writes a changed header area back: keyslots area first, then the secondary, then the primary header,
    /// each flushed, so an interruption leaves either the old metadata or the new one pointing at intact keyslots.
    func writeBack(_ area: [UInt8]) throws(VolumeError) {
        _ = try Metadata.validate(area: area, path: path)
        try DeviceFile(path: path).write(
            area,
            ranges: [
                2 * Layout.metadataSize..<Layout.headerAreaSize, Layout.metadataSize..<2 * Layout.metadataSize,
                0..<Layout.metadataSize,
            ])
    }

    /// The operator's recovery (on the operator's machine, never in the guest): decrypts the recovery key from
    /// `blob` (the armored text printed at format time) or, when nil, from the header's `vhsm-recovery` token,
    /// and proves that it opens the recovery keyslot, without activating anything.
    public func recover(blob: String? = nil, privateKey: RecoveryPrivateKey) throws(VolumeError) -> RecoveredKey {
        let header = try readHeader()
        let token: RecoveryToken
        if let blob {
            let parsed = try RecoveryToken.parse(armored: blob)
            guard parsed.volumeUUID == header.uuid else {
                throw .recovery(
                    path: path, "the recovery blob is for volume \(parsed.volumeUUID), this volume is \(header.uuid)")
            }
            token = parsed.token
        } else {
            guard let stored = header.metadata.recoveryToken else {
                throw .recovery(path: path, "the header has no vhsm-recovery token; give the printed blob instead")
            }
            token = stored
        }
        let key: RecoveryKey
        do { key = try privateKey.open(token, volumeUUID: header.uuid) } catch {
            if case .recovery(_, let text) = error { throw .recovery(path: path, text) }
            throw error
        }
        let slot = try header.checkRecoveryKey(key, keyslot: token.keyslot)
        return RecoveredKey(volumeUUID: header.uuid, keyslot: slot, key: key)
    }
}

/// A recovery key that was decrypted and shown to open its keyslot.
public struct RecoveredKey: Sendable {
    public let volumeUUID: String
    public let keyslot: Int
    public let key: RecoveryKey
}

extension ValidatedHeader {
    /// The keyslots a token names: the machine keyslot and, if present, the recovery keyslot.
    var activeKeyslots: Set<Int> {
        var slots: Set<Int> = [snpToken.keyslot]
        if let recovery = metadata.recoveryToken { slots.insert(recovery.keyslot) }
        return slots
    }

    /// The recovery key opens `keyslot` (no activation). Returns the keyslot.
    @discardableResult
    func checkRecoveryKey(_ key: RecoveryKey, keyslot: Int) throws(VolumeError) -> Int {
        try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            return try device.activate(name: nil, keyslot: keyslot, passphrase: key.passphrase)
        }
    }
}
