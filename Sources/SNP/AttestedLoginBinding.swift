import Crypto

/// The binding of a workload's login to a fresh report (`auth/sev-snp/login`):
///
///     REPORT_DATA = SHA-512( "vhsm-login-v1" ‖ nonce ‖ K ‖ S )
///
/// the 13 ASCII bytes of the label (no terminator); the 32 nonce bytes vhsmd issued (`auth/sev-snp/nonce`); K, the
/// SHA-256 of the DER SubjectPublicKeyInfo of the workload's `public_key`, or 32 zero bytes when the login names
/// none; S, the SHA-256 of the DER SubjectPublicKeyInfo of the TLS certificate the client saw (32 zero bytes over
/// plain HTTP in dev mode). The whole 64-byte REPORT_DATA is that digest: the report answers this nonce, names
/// this key and was meant for this vhsmd, not for whoever terminated TLS in between.
public enum AttestedLoginBinding {
    public static let label = "vhsm-login-v1"
    public static let nonceCount = 32
    /// K or S when there is no key to name: 32 zero bytes.
    public static let absent = [UInt8](repeating: 0, count: SHA256.byteCount)

    /// REPORT_DATA for `nonce` (32 bytes), `publicKeySHA256` (K, 32 bytes; nil means no `public_key`, 32 zero
    /// bytes) and `audienceSPKISHA256` (S, 32 bytes); nil when any has another length.
    public static func reportData(
        nonce: [UInt8], publicKeySHA256: [UInt8]?, audienceSPKISHA256: [UInt8]
    ) -> [UInt8]? {
        let key = publicKeySHA256 ?? absent
        guard nonce.count == nonceCount, key.count == SHA256.byteCount,
            audienceSPKISHA256.count == SHA256.byteCount
        else { return nil }
        return Array(SHA512.hash(data: Array(label.utf8) + nonce + key + audienceSPKISHA256))
    }
}
