import Crypto

/// The binding of vhsmd's TLS key to a fresh report (attested TLS, `sys/attestation`):
///
///     REPORT_DATA = SHA-512( "vhsm-attested-tls-v1" ‖ nonce ‖ SHA-256(SPKI) )
///
/// the 20 ASCII bytes of the label (no terminator), the verifier's 32 nonce bytes, and the SHA-256 of the DER
/// SubjectPublicKeyInfo of the leaf certificate vhsmd serves. The whole 64-byte REPORT_DATA is that digest. The
/// certificate's own evidence uses an all-zero nonce.
public enum AttestedTLSBinding {
    public static let label = "vhsm-attested-tls-v1"
    public static let nonceCount = 32
    /// The nonce of the evidence in vhsmd's certificate: 32 zero bytes.
    public static let certificateNonce = [UInt8](repeating: 0, count: nonceCount)

    /// REPORT_DATA for `nonce` (32 bytes) and `spkiSHA256` (32 bytes); nil when either has another length.
    public static func reportData(nonce: [UInt8], spkiSHA256: [UInt8]) -> [UInt8]? {
        guard nonce.count == nonceCount, spkiSHA256.count == SHA256.byteCount else { return nil }
        return Array(SHA512.hash(data: Array(label.utf8) + nonce + spkiSHA256))
    }

    /// SHA-256 of a DER SubjectPublicKeyInfo.
    public static func spkiSHA256(_ spki: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: spki)) }
}
