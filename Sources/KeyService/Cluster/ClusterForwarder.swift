import AttestedTLS
import FoundationEssentials
import HTTPTypes
import NIOHTTP1
import SNP
import Synchronization

/// A standby's forwarding of a client's request to the active node (issue 17), as Vault's standbys forward by
/// default: over HTTPS to the active node's `api_addr`, whose certificate attested TLS verified first (a fresh report
/// from its `sys/attestation`, its MEASUREMENT equal to this node's own, its chain one this node trusts) and then
/// pinned. The client's method, target, body and the headers vhsmd reads (token, wrapping, content type, namespace)
/// go as sent; the answer comes back as the active node gave it. Nothing is forwarded over plain HTTP, to an
/// address whose evidence does not verify, or twice (`X-Vhsm-Forwarded`): the standby answers the 307 then, as it does
/// when the client sends `X-Vault-No-Request-Forwarding`.
final class ClusterForwarder: Sendable {
    /// Marks a forwarded request; a node receiving one never forwards it again.
    static let forwardedHeader = "X-Vhsm-Forwarded"
    /// The client's opt-out (Vault's name).
    static let noForwardingHeader = "X-Vault-No-Request-Forwarding"
    /// The request headers vhsmd reads, forwarded as sent.
    static let forwardedRequestHeaders = [
        "X-Vault-Token", "Authorization", "X-Vault-Wrap-TTL", "Content-Type", "X-Vault-Namespace",
    ]
    /// The largest answer relayed (a LIST of many keys; bodies in are bounded by the listener).
    static let maximumAnswer = 64 << 20

    let measurement: [UInt8]
    let verifier: ReportVerifier
    /// Kept-alive connections to verified active nodes, by api_addr; dropped when a request fails (the active node
    /// may have a new key), so the next request verifies it again.
    private let verified = Mutex<[String: ForwardingPool]>([:])

    init(measurement: [UInt8], verifier: ReportVerifier) {
        self.measurement = measurement
        self.verifier = verifier
    }

    /// How many connections forwarding to `leader` opened since it was verified (nil: not verified now).
    func connectionsOpened(to leader: String) -> Int? {
        verified.withLock { $0[leader] }?.opened.load(ordering: .relaxed)
    }

    /// Forwards to `leader` (an `https://` api_addr); throws when it cannot (the caller answers the 307 instead).
    func forward(
        to leader: String, method: HTTPMethod, target: String, headers: HTTPHeaders, body: [UInt8]
    ) async throws -> VaultHTTPAnswer {
        guard leader.hasPrefix("https://") else {
            throw ClusterJoinError("the active node's api_addr \(leader) is not https: requests are not forwarded")
        }
        let transport: ForwardingPool
        if let known = verified.withLock({ $0[leader] }) {
            transport = known
        } else {
            let checked = try await ClusterJoinHTTP.connect(url: leader, measurement: measurement, verifier: verifier)
            guard let leaf = checked.pinnedLeaf else {
                throw ClusterJoinError("the active node \(leader) was not verified by attested TLS")
            }
            transport = try ForwardingPool(
                host: checked.host, port: checked.port, pinnedLeaf: leaf, place: checked.place)
            verified.withLock { $0[leader] = transport }
        }
        var forwarded: [(String, String)] = [(Self.forwardedHeader, "1")]
        for name in Self.forwardedRequestHeaders {
            for value in headers[name] { forwarded.append((name, value)) }
        }
        let answer: (status: Int, headers: HTTPHeaders, body: [UInt8])
        do {
            answer = try await transport.send(
                method: method, target: target, headers: forwarded, body: body, limit: Self.maximumAnswer)
        } catch {
            verified.withLock { if $0[leader] === transport { $0[leader] = nil } }
            throw error
        }
        var relayed = VaultHTTPAnswer(
            status: HTTPResponse.Status(code: answer.status), contentType: answer.headers.first(name: "Content-Type"),
            body: answer.body)
        relayed.location = answer.headers.first(name: "Location")
        relayed.retryAfter = answer.headers.first(name: "Retry-After").flatMap { Int($0) }
        relayed.cacheControl = answer.headers.first(name: "Cache-Control")
        return relayed
    }
}
