public import Crypto
public import Sealing
import StrictJSON

/// Moving a volume to a new chip, measurement or TCB (`vhsm volume reenroll`): what the guest derives, what the
/// operator's grant holds, and the `vhsm-reenroll` token that carries the grant to the next boot.
///
/// A guest whose launch cannot open the volume derives, from the sealing key of the enrollment it would make
/// (`ikm`, 32 bytes) and the lowercase volume UUID (`salt`), with HKDF-SHA256:
/// - the request key: info `vhsm/recovery-request/volume`, 32 bytes, an X25519 private key (its public half goes
///   into the `RecoveryRequest`, bound by REPORT_DATA);
/// - the challenge: info `vhsm/recovery-challenge/volume`, 32 bytes, printed only HPKE-sealed to the operator's
///   public key of the measured configuration ("VHSM RECOVERY CHALLENGE", context `volume|<uuid>`).
/// Both are the same on every boot of that launch and unknown to the host. The grant's plaintext is the 32-byte
/// recovery key followed by the 32-byte challenge: only the operator can read the challenge, so only the operator
/// can make a grant the guest accepts (anyone can seal to the request's public key), and the recovery key must then
/// open the recovery keyslot.
public enum ReenrollGrant {
    /// The grant's plaintext: recovery key ‖ challenge.
    public static let secretBytes = RecoveryKey.byteCount + challengeBytes
    public static let challengeBytes = 32
    public static let requestKeyInfo = "vhsm/recovery-request/volume"
    public static let challengeInfo = "vhsm/recovery-challenge/volume"

    /// The X25519 private key of this launch's recovery request for `volumeUUID`.
    public static func requestKey(
        sealingKey: [UInt8], volumeUUID: String
    ) throws(VolumeError) -> Curve25519.KeyAgreement.PrivateKey {
        let derived = derive(sealingKey: sealingKey, volumeUUID: volumeUUID, info: requestKeyInfo)
        do {
            return try derived.withUnsafeBytes { try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) }
        } catch {
            throw .invalidArgument("cannot make an X25519 key from the derived request key: \(error)")
        }
    }

    /// This launch's challenge for `volumeUUID` (a key: swift-crypto zeroes it when released).
    public static func challenge(sealingKey: [UInt8], volumeUUID: String) -> SymmetricKey {
        derive(sealingKey: sealingKey, volumeUUID: volumeUUID, info: challengeInfo)
    }

    /// The grant's plaintext for `recoveryKey` and the challenge the operator opened; the caller zeroes it.
    public static func secret(recoveryKey: RecoveryKey, challenge: [UInt8]) throws(VolumeError) -> [UInt8] {
        guard challenge.count == challengeBytes else {
            throw .invalidArgument("the recovery challenge is \(challenge.count) bytes, expected \(challengeBytes)")
        }
        var secret = [UInt8](repeating: 0, count: secretBytes)
        recoveryKey.key.withUnsafeBytes { key in
            for index in 0..<RecoveryKey.byteCount { secret[index] = key[index] }
        }
        for index in 0..<challengeBytes { secret[RecoveryKey.byteCount + index] = challenge[index] }
        return secret
    }

    /// The recovery key in an opened grant, after checking (in constant time) that the grant answers `challenge`.
    /// `secret` belongs to the caller, who zeroes it.
    public static func recoveryKey(
        in secret: [UInt8], challenge: SymmetricKey, volumeUUID: String
    ) throws(VolumeError) -> RecoveryKey {
        guard secret.count == secretBytes else {
            throw .recovery(
                path: "volume \(volumeUUID)", "the recovery grant holds \(secret.count) bytes, expected \(secretBytes)")
        }
        let answered = challenge.withUnsafeBytes { expected in
            var difference: UInt8 = 0
            for index in 0..<challengeBytes { difference |= expected[index] ^ secret[RecoveryKey.byteCount + index] }
            return difference == 0
        }
        guard answered else {
            throw .recovery(
                path: "volume \(volumeUUID)",
                "the recovery grant does not answer this launch's challenge: it was not made by the operator from "
                    + "this launch's request")
        }
        return secret.withUnsafeBytes { bytes in
            RecoveryKey(key: SymmetricKey(data: UnsafeRawBufferPointer(rebasing: bytes[0..<RecoveryKey.byteCount])))
        }
    }

    private static func derive(sealingKey: [UInt8], volumeUUID: String, info: String) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: sealingKey), salt: Array(volumeUUID.lowercased().utf8),
            info: Array(info.utf8), outputByteCount: 32)
    }
}

extension LUKSVolume {
    /// Stores `grant` (kind `recoveryGrant`, context `volume|<uuid>`, X25519, `ReenrollGrant.secretBytes` of
    /// plaintext) as the header's `vhsm-reenroll` token, replacing one that is there, on a RAM copy of the
    /// validated header written back like a keyslot change; then reads the header back and checks it holds
    /// exactly this grant. Refuses a header without a `vhsm-recovery` token.
    public func writeReenrollGrant(_ grant: SealedSecret) throws(VolumeError) {
        let header = try readHeader()
        let context = ReenrollToken.context(volumeUUID: header.uuid)
        guard grant.kind == .recoveryGrant, grant.context == context else {
            throw .invalidArgument(
                "the grant is a \(grant.kind.rawValue) for '\(grant.context)', expected a VHSM RECOVERY GRANT for "
                    + "'\(context)'")
        }
        guard grant.suite == .x25519, grant.encapsulatedKey.count == HPKESuite.x25519.encapsulatedKeyBytes,
            grant.ciphertext.count == ReenrollGrant.secretBytes + 16, grant.recipientFingerprint.count == 32
        else {
            throw .invalidArgument(
                "the grant is not an X25519 grant of \(ReenrollGrant.secretBytes) bytes (suite "
                    + "\(grant.suite.rawValue), ciphertext \(grant.ciphertext.count) bytes)")
        }
        guard header.metadata.recoveryToken != nil else {
            throw .recovery(path: path, "the header has no vhsm-recovery token, so nothing can be re-enrolled")
        }
        try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(header.area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            if let existing = header.metadata.reenrollTokenID { try device.removeToken(id: existing) }
            try device.setToken(id: header.metadata.reenrollTokenID, json: ReenrollToken.json(grant).serialized)
            try writeBack(try copy.read())
        }
        guard try readHeader().metadata.reenrollGrant == grant else {
            throw .invalidArgument("the header of \(path) does not read back with the grant just written")
        }
    }

    /// Removes the `vhsm-reenroll` token, if there is one (after the re-enrollment it carried, or a stale one).
    /// Returns whether there was one.
    @discardableResult
    public func removeReenrollGrant() throws(VolumeError) -> Bool {
        let header = try readHeader()
        guard let id = header.metadata.reenrollTokenID else { return false }
        try CryptLibrary.run { () throws(VolumeError) in
            let copy = try HeaderCopy(header.area)
            let device = try CryptDevice(header: copy.path, data: path)
            try device.load()
            try device.removeToken(id: id)
            try writeBack(try copy.read())
        }
        guard try readHeader().metadata.reenrollTokenID == nil else {
            throw .invalidArgument("the header of \(path) still holds the vhsm-reenroll token after removing it")
        }
        return true
    }
}

extension ValidatedHeader {
    /// The operator's recovery grant from the `vhsm-reenroll` token, if any (unauthenticated until it opens with
    /// this launch's request key and answers its challenge).
    public var reenrollGrant: SealedSecret? { metadata.reenrollGrant }
}
