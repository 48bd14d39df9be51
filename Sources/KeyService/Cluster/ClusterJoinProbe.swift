package import Crypto
package import FoundationEssentials
import HTTPTypes
package import SNP

/// `POST sys/cluster/join` from the body's bytes, as a sponsor receives them: parsed by `JSONParser` as the server
/// parses every body, then checked by `ClusterJoinSponsor.join`, against a fixed sponsor. It is the entry point of the
/// `cluster-join` fuzz target. The sponsor is alone with an empty store (no join policy stored: the default, its own
/// MEASUREMENT), a fixed root key, AMD's roots (and `trustedRoots`), and S = 32 zero bytes (plain HTTP).
package struct ClusterJoinProbe: Sendable {
    /// What the sponsor answered.
    package enum Outcome: Sendable, Equatable {
        /// The body is not JSON: the server answers 400 before the sponsor sees it.
        case notJSON
        /// Admitted: the cluster root key sealed to the request's `public_key`.
        case accepted(sealedRootKey: String)
        /// Refused with this status and these messages.
        case refused(status: Int, messages: [String])
    }

    /// Replaced in each body by the nonce the sponsor issued (its 64 hex digits), so that a fixed input can present
    /// a fresh nonce.
    package static let nonceMarker = String(repeating: "N", count: 64)

    let launch: ClusterJoinSponsor.Launch
    let verifier: ReportVerifier
    let rootKey: SymmetricKey

    package init(measurement: [UInt8], trustedRoots: [AMDCertificate] = [], rootKey: SymmetricKey) {
        launch = .init(measurement: measurement, idKeyDigest: Array(repeating: 0, count: 48))
        verifier = ClusterJoinSponsor.verifier(trustedRoots: trustedRoots)
        self.rootKey = rootKey
    }

    /// Posts `bodies` in order to one fresh sponsor that has issued one nonce at `now` (each arrives at `now`);
    /// `nonceMarker` in a body stands for that nonce. Returns each outcome and whether the nonce was still unspent
    /// after it.
    package func post(_ bodies: [[UInt8]], now: Date) -> [(outcome: Outcome, nonceUnspent: Bool)] {
        let sponsor = ClusterJoinSponsor(launch: launch, verifier: verifier, nonces: LoginNonces())
        guard let nonce = try? sponsor.nonces.issue(now: now).nonce else {
            return bodies.map { _ in (.refused(status: 429, messages: ["no nonce"]), false) }
        }
        let marker = Array(Self.nonceMarker.utf8)
        let hex = Array(Hex.encode(nonce).utf8)
        let rootKey = self.rootKey
        let context = ClusterJoinSponsor.Context(
            cluster: "fuzz", servedSPKISHA256: AttestedLoginBinding.absent,
            storage: EngineStorage(backend: MemoryBackend(), prefix: ""), rootKey: { rootKey })
        return bodies.map { bytes in
            var body = bytes
            if let range = body.firstRange(of: marker) { body.replaceSubrange(range, with: hex) }
            let outcome: Outcome
            if let parsed = try? JSONParser.parse(body) {
                outcome = Self.answer(sponsor, parsed, context: context, now: now)
            } else {
                outcome = .notJSON
            }
            return (outcome, sponsor.nonces.count == 1)
        }
    }

    private static func answer(
        _ sponsor: ClusterJoinSponsor, _ body: JSONValue, context: ClusterJoinSponsor.Context, now: Date
    ) -> Outcome {
        let request = VaultRequest(
            operation: .update, path: ClusterJoinSponsor.joinPath, body: body, query: [:], token: nil)
        do {
            let reply = try sponsor.join(request, context: context, arrived: now)
            guard case .string(let sealed)? = reply.data?.objectMembers["sealed_root_key"] else {
                return .refused(status: 500, messages: ["an admission without sealed_root_key"])
            }
            return .accepted(sealedRootKey: sealed)
        } catch {
            return .refused(status: Int(error.status.code), messages: error.messages)
        }
    }
}
