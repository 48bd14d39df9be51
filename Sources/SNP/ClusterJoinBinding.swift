import Crypto

/// The binding of a node's cluster join (`sys/cluster/join`) to a fresh report, the same shape as
/// `AttestedLoginBinding` with another label:
///
///     REPORT_DATA = SHA-512( "vhsm-cluster-join-v1" ‖ nonce ‖ K ‖ S )
///
/// the 20 ASCII bytes of the label (no terminator); the 32 nonce bytes the sponsor issued
/// (`sys/cluster/join/nonce`); K, the SHA-256 of the DER SubjectPublicKeyInfo of the joiner's ephemeral HPKE key
/// (`public_key`, the key the cluster root key is sealed to); S, the SHA-256 of the DER SubjectPublicKeyInfo of the
/// TLS certificate the sponsor serves (32 zero bytes over plain HTTP). The report answers this nonce, names this key
/// and was meant for this sponsor; a report made for a login never passes as a join, nor the reverse.
public enum ClusterJoinBinding {
    public static let label = "vhsm-cluster-join-v1"
    public static let nonceCount = 32

    /// REPORT_DATA for `nonce` (32 bytes), `publicKeySHA256` (K, 32 bytes) and `audienceSPKISHA256` (S, 32 bytes);
    /// nil when any has another length.
    public static func reportData(
        nonce: [UInt8], publicKeySHA256: [UInt8], audienceSPKISHA256: [UInt8]
    ) -> [UInt8]? {
        guard nonce.count == nonceCount, publicKeySHA256.count == SHA256.byteCount,
            audienceSPKISHA256.count == SHA256.byteCount
        else { return nil }
        return Array(SHA512.hash(data: Array(label.utf8) + nonce + publicKeySHA256 + audienceSPKISHA256))
    }
}
