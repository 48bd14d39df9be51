import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SNP
import SNPEmulator
import Synchronization
import Testing

@testable import KeyService

/// A standby forwards what it does not serve to the active node, over HTTPS whose certificate attested TLS verified
/// (the active node's MEASUREMENT equal to the standby's own); otherwise (the client opts out, the request was
/// forwarded already, the active node's evidence does not match) it answers the 307.
extension ClusterJoinTests {
    @Test func aStandbyForwardsToTheVerifiedActiveNodeAndRedirectsOtherwise() async throws {
        let identity = try sponsorIdentity()
        store.active.store(true, ordering: .relaxed)
        lease.activate()
        try sponsorRuntime.becameActive()
        guard case .string(let root)? = try sponsorRuntime.initialize().bare?["root_token"] else {
            Issue.record("sys/init answered no root token")
            return
        }
        // node2: a member of the same store, a standby naming node1 (served over HTTPS below) as the leader.
        let standbySeal = joinerSeal(SymmetricKey(size: .bits256))
        try standbySeal.enroll(try sponsorSeal.rootKey())
        let standbyRuntime = try Runtime(
            barrier: Barrier(backend: store), seal: standbySeal, storageType: "postgresql", clustered: true,
            clusterName: "c")
        let standbyLease = FakeLease(nodeID: "node2", apiAddress: "http://127.0.0.1:1")
        standbyRuntime.attach(standbyLease)
        let verifier = ClusterJoinSponsor.verifier(trustedRoots: [Self.chip.ark])
        let forwarder = ClusterForwarder(measurement: Self.measurement, verifier: verifier)
        @Sendable func standby(expecting measurement: [UInt8]) throws -> some ApplicationProtocol {
            try buildApplication(
                core: VaultCore(
                    runtime: standbyRuntime,
                    forwarder: measurement == Self.measurement
                        ? forwarder : ClusterForwarder(measurement: measurement, verifier: verifier)),
                host: "127.0.0.1", port: 0, logger: Logger(label: "test"), limits: ServerTests.patientLimits)
        }
        @Sendable func headers(_ extra: [String: String] = [:]) -> HTTPFields {
            var fields: HTTPFields = [HTTPField.Name("X-Vault-Token")!: root]
            for (name, value) in extra { fields[HTTPField.Name(name)!] = value }
            return fields
        }
        try await makeApp(tls: identity).test(.live) { active in
            let port = try #require(active.port)
            let leader = "https://127.0.0.1:\(port)"
            standbyLease.set(
                HAView(
                    isActive: false, leader: LeaderAdvertisement(nodeID: "node1", apiAddress: leader, activeTime: "t"),
                    activeSince: nil))
            store.active.store(true, ordering: .relaxed)
            try await standby(expecting: Self.measurement).test(.live) { client in
                // Writes and reads through the standby are served by the active node, with their answers.
                try await client.execute(
                    uri: "/v1/sys/mounts/secret", method: .post, headers: headers(),
                    body: ByteBuffer(string: #"{"type":"kv","options":{"version":"2"}}"#)
                ) { #expect($0.status == .noContent) }
                try await client.execute(
                    uri: "/v1/secret/data/app", method: .post, headers: headers(),
                    body: ByteBuffer(string: #"{"data":{"password":"forwarded"}}"#)
                ) { #expect($0.status == .ok) }
                try await client.execute(uri: "/v1/secret/data/app", method: .get, headers: headers()) { response in
                    #expect(response.status == .ok)
                    #expect(String(buffer: response.body).contains(#""password":"forwarded""#))
                }
                // A missing token is the active node's answer too (403), not the standby's.
                try await client.execute(uri: "/v1/secret/data/app", method: .get) { #expect($0.status == .forbidden) }
                // The four requests, one after another, went over one kept-alive connection (one TLS handshake).
                #expect(forwarder.connectionsOpened(to: leader) == 1)
                // The standby still answers its own health.
                try await client.execute(uri: "/v1/sys/health", method: .get) { #expect($0.status.code == 429) }
                // The client opts out, or the request was forwarded once already: the 307.
                for extra in [["X-Vault-No-Request-Forwarding": "true"], ["X-Vhsm-Forwarded": "1"]] {
                    try await client.execute(
                        uri: "/v1/secret/data/app?version=1", method: .get, headers: headers(extra)
                    ) { response in
                        #expect(response.status == .temporaryRedirect)
                        #expect(response.headers[.location] == leader + "/v1/secret/data/app?version=1")
                    }
                }
            }
            // A standby of another measurement does not trust this active node: nothing is forwarded, the 307 instead.
            try await standby(expecting: Self.otherMeasurement).test(.live) { client in
                try await client.execute(uri: "/v1/secret/data/app", method: .get, headers: headers()) { response in
                    #expect(response.status == .temporaryRedirect)
                    #expect(response.headers[.location] == leader + "/v1/secret/data/app")
                }
            }
        }
    }
}

/// The pool's connections to the active node: an answer that never comes is bounded.
@Suite struct ForwardingPoolTests {
    /// Completes the TLS handshake, reads every request and never answers.
    final class Silent: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }

    @Test func anActiveNodeThatNeverAnswersFailsTheRequestAndItsConnectionIsNotReused() async throws {
        let directory = TemporaryDirectory()
        let identity = try TLSIdentity.selfSigned(directory: directory.path, host: "127.0.0.1")
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: identity.certificateChain.map { .certificate($0) },
            privateKey: .privateKey(identity.privateKey))
        configuration.minimumTLSVersion = .tlsv12
        let context = try NIOSSLContext(configuration: configuration)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(Silent())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let port = try #require(server.localAddress?.port)
        let leaf = try #require(try identity.certificateChain.first?.toDERBytes())
        let pool = try ForwardingPool(
            host: "127.0.0.1", port: port, pinnedLeaf: leaf, place: "https://127.0.0.1:\(port)",
            answerTimeout: .milliseconds(300))
        for attempt in 1...2 {
            do {
                _ = try await pool.send(method: .GET, target: "/v1/sys/health", headers: [], body: [], limit: 1 << 20)
                Issue.record("a server that never answers was taken to have answered")
            } catch {
                // The sentence names the node and the bound; the handshake itself succeeded (the leaf is the pinned one).
                #expect("\(error)".contains("the active node https://127.0.0.1:\(port) did not answer within 0.3 s"))
            }
            // The stalled connection was closed, not kept: each attempt opened its own.
            #expect(pool.opened.load(ordering: .relaxed) == attempt)
        }
    }
}
