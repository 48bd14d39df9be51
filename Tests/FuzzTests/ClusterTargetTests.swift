import Crypto
import Foundation
import KeyService
import Testing

@testable import FuzzTargets

/// The cluster targets reach what they claim to fuzz: the join's complete seed gets past the nonce, the parsing and
/// the report's signature and chain, to the REPORT_DATA refusal, spending the nonce, and its replay is refused for
/// the nonce; the leader advertisement's signed seed verifies, and a changed field or another key does not.
@Suite struct ClusterTargetTests {
    @Test func theJoinSeedReachesTheBindingCheckAndItsReplayIsRefusedForTheNonce() throws {
        let fixture = try ClusterTargets.joinFixture()
        let seeds = try ClusterTargets.join.seeds(.default)
        // The complete seed (a list of base64 DER certificates) and the PEM chain: both reach REPORT_DATA.
        for seed in seeds.prefix(2) {
            let answers = fixture.probe.post([seed, seed], now: fixture.vector.validAt)
            guard case .refused(403, let messages) = answers[0].outcome else {
                Issue.record("the seed was answered \(answers[0].outcome)")
                continue
            }
            #expect(
                messages.count == 1 && messages[0].hasPrefix("join refused: REPORT_DATA binds another key"),
                "\(messages)")
            #expect(!answers[0].nonceUnspent)
            guard case .refused(403, let again) = answers[1].outcome else {
                Issue.record("the replay was answered \(answers[1].outcome)")
                continue
            }
            #expect(again.count == 1 && again[0].contains("the nonce is unknown"))
        }
        // A nonce the sponsor did not issue: refused for it, and the sponsor's nonce stays unspent.
        let wrongNonce = fixture.probe.post([seeds[3]], now: fixture.vector.validAt)[0]
        guard case .refused(403, let messages) = wrongNonce.outcome else {
            Issue.record("a wrong nonce was answered \(wrongNonce.outcome)")
            return
        }
        #expect(messages.first?.contains("the nonce is unknown") == true)
        #expect(wrongNonce.nonceUnspent)
        // An unknown field: a 400 whose message, as every refusal's, starts "join refused:" (it did not: the
        // cluster-join target's first finding) and names the field.
        let unknown = fixture.probe.post([seeds[2]], now: fixture.vector.validAt)[0]
        guard case .refused(400, let refusals) = unknown.outcome else {
            Issue.record("an unknown field was answered \(unknown.outcome)")
            return
        }
        #expect(
            refusals == [
                "join refused: malformed request: a join request has no field 'ttl'; its fields are certificates, node_id, "
                    + "nonce, public_key, report"
            ])
        #expect(fixture.probe.post([Array("not json".utf8)], now: fixture.vector.validAt)[0].outcome == .notJSON)
        for seed in seeds { try ClusterTargets.join.run(seed) }
    }

    @Test func onlyTheSignedAdvertisementVerifies() throws {
        let seeds = try ClusterTargets.leaderAdvertisement.seeds(.default)
        let signed = try #require(LeaderAdvertisement(haValue: String(decoding: seeds[0], as: UTF8.self)))
        #expect(signed.verifies(with: ClusterTargets.advertisementKey))
        #expect(!signed.verifies(with: ClusterTargets.otherKey))
        var moved = signed
        moved.apiAddress = "https://attacker.example:8200"
        #expect(!moved.verifies(with: ClusterTargets.advertisementKey))
        let unsigned = try #require(LeaderAdvertisement(haValue: String(decoding: seeds[1], as: UTF8.self)))
        #expect(unsigned.mac == nil && !unsigned.verifies(with: ClusterTargets.advertisementKey))
        #expect(LeaderAdvertisement(haValue: "{\"node_id\": 1}") == nil)
        #expect(LeaderAdvertisement(haValue: "") == nil)
        for seed in seeds { try ClusterTargets.leaderAdvertisement.run(seed) }
    }
}
