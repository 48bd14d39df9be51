import AttestedTLS
import Crypto
import FoundationEssentials
import SNP
import Sealing

/// How a joining node reaches its sponsor: one POST of a JSON body to a path below `/v1/`.
protocol ClusterJoinTransport: Sendable {
    /// The sponsor as messages name it (`https://10.0.0.5:8200`).
    var place: String { get }
    /// S of `ClusterJoinBinding`: the SHA-256 of the SPKI of the certificate the sponsor was verified to serve,
    /// 32 zero bytes over plain HTTP.
    var audienceSPKISHA256: [UInt8] { get }
    func post(_ path: String, body: [UInt8]) async throws -> (status: Int, body: [UInt8])
}

/// Why a node did not join: a sentence naming the sponsor and the reason.
struct ClusterJoinError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The joiner's half of the attested join (`join` in vhsmd's configuration): at start, a cluster node without a
/// member entry draws a nonce from its sponsor, makes a fresh report binding that nonce, a fresh ephemeral HPKE key
/// and the sponsor's certificate (`ClusterJoinBinding`), posts it to `sys/cluster/join`, opens the sealed cluster
/// root key with the ephemeral key, checks that it opens the cluster's keyring, and enrolls (`ClusterSeal.enroll`):
/// it then starts as a standby that unseals by itself.
struct ClusterJoiner: Sendable {
    let nodeID: String
    /// This launch's reports (the seal's device) and the configured certificates.
    let evidence: EvidenceSource

    /// Joins through `transport`: on return this node has its member entry. Nothing is written unless the key the
    /// sponsor returned opens the cluster's keyring.
    func join(
        via transport: any ClusterJoinTransport, seal: ClusterSeal, barrier: Barrier
    ) async throws(ClusterJoinError) {
        let place = transport.place
        func fail(_ reason: String) -> ClusterJoinError {
            ClusterJoinError("node \(nodeID) did not join the cluster through its sponsor \(place): \(reason)")
        }
        let nonceAnswer = try await Self.post(transport, ClusterJoinSponsor.noncePath, .object([:]), fail)
        guard case .string(let nonceText)? = nonceAnswer["nonce"],
            let nonce = try? Hex.decode(nonceText, count: ClusterJoinBinding.nonceCount)
        else {
            throw fail("its \(ClusterJoinSponsor.noncePath) answer holds no 64-hex-digit nonce")
        }
        let key = HPKEPrivateKey(generating: .x25519)
        guard
            let reportData = ClusterJoinBinding.reportData(
                nonce: nonce, publicKeySHA256: key.publicKey.fingerprint,
                audienceSPKISHA256: transport.audienceSPKISHA256)
        else { throw fail("the sponsor's certificate digest is not 32 bytes") }
        let report: AttestationReport
        let certificates: [[UInt8]]
        do { (report, certificates) = try evidence.report(reportData: reportData) } catch {
            throw fail("this node's report could not be made: \(error)")
        }
        guard !certificates.isEmpty else {
            throw fail(
                "\(evidence.name) supplied no VCEK or VLEK with the report and the configuration names no "
                    + "attestation_certificates")
        }
        let request = JSONValue.object([
            "node_id": .string(nodeID), "nonce": .string(Hex.encode(nonce)),
            "report": .string(TransitBase64.encode(report.bytes)),
            "certificates": .array(certificates.map { JSONValue.string(TransitBase64.encode($0)) }),
            "public_key": .string(key.publicKey.pemRepresentation),
        ])
        let answer = try await Self.post(transport, ClusterJoinSponsor.joinPath, request, fail)
        guard case .string(let cluster)? = answer["cluster"], case .string(let sealed)? = answer["sealed_root_key"],
            case .string(let suite)? = answer["suite"], case .string(let info)? = answer["info"]
        else {
            throw fail("its answer lacks cluster, sealed_root_key, suite or info")
        }
        guard cluster == seal.members.cluster else {
            throw fail(
                "it is a node of cluster '\(cluster)', this node's cluster_name is '\(seal.members.cluster)'")
        }
        var bytes: [UInt8]
        do { bytes = try SealedClusterRootKey.open(sealed, suite: suite, info: info, with: key, nonce: nonce) } catch {
            throw fail("\(error)")
        }
        defer { bytes.zeroize() }
        let rootKey = SymmetricKey(data: bytes)
        // A sponsor could seal any key to the joiner's public key: only the cluster's own opens its keyring.
        guard barrier.opens(rootKey: rootKey) else {
            throw fail(
                "the key it returned does not open the cluster's keyring in the database: refused (a sponsor of "
                    + "another cluster, or one that is not what it attested)")
        }
        do { try seal.enroll(rootKey) } catch {
            throw fail("the root key was received but this node's member entry could not be written: \(error)")
        }
    }

    /// One POST; the answer's `data` (200), else the refusal as a sentence.
    private static func post(
        _ transport: any ClusterJoinTransport, _ path: String, _ body: JSONValue,
        _ fail: (String) -> ClusterJoinError
    ) async throws(ClusterJoinError) -> [String: JSONValue] {
        let status: Int
        let bytes: [UInt8]
        do { (status, bytes) = try await transport.post(path, body: body.serialized) } catch {
            throw fail("POST /v1/\(path) failed: \(error)")
        }
        let parsed = try? JSONValue.parse(bytes)
        guard status == 200 else {
            var errors: [String] = []
            if case .array(let items)? = parsed?.objectMembers["errors"] {
                errors = items.compactMap { item -> String? in
                    guard case .string(let text) = item else { return nil }
                    return text
                }
            }
            throw fail(
                "POST /v1/\(path) answered \(status): "
                    + (errors.isEmpty
                        ? String(decoding: bytes.prefix(512), as: UTF8.self) : errors.joined(separator: "; ")))
        }
        guard case .object(let data)? = parsed?.objectMembers["data"] else {
            throw fail("POST /v1/\(path) answered 200 without a JSON data object")
        }
        return data
    }
}
