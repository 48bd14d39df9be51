import Crypto
import Foundation
import KeyService
import SNP
import Sealing

/// What a node of a cluster (issue 17) reads from outside: a joiner's request body, and the lease row a standby
/// reads from the shared database (whose operators can write anything into it).
enum ClusterTargets {
    /// The join's fixed sponsor: its own launch is the genuine report vector's MEASUREMENT, it trusts AMD's roots,
    /// and requests arrive at the vector's `valid_at` (its certificates are valid then).
    struct JoinFixture: Sendable {
        var probe: ClusterJoinProbe
        var vector: SNPTargets.Vector
        /// The joiner's HPKE public key of the seeds (X25519, from fixed bytes), as PEM.
        var publicKeyPEM: String
    }

    private static let loadedJoin = MadeOnce<JoinFixture>()

    static func joinFixture(_ data: TestData = .default) throws(FuzzFinding) -> JoinFixture {
        try loadedJoin.value { () throws(FuzzFinding) in try makeJoinFixture(data) }
    }

    private static func makeJoinFixture(_ data: TestData) throws(FuzzFinding) -> JoinFixture {
        let vector = try SNPTargets.vector(data)
        let report: AttestationReport
        do { report = try AttestationReport(bytes: vector.report) } catch {
            throw FuzzFinding("cluster-join", "the genuine report vector does not parse: \(error)")
        }
        let joiner: Curve25519.KeyAgreement.PrivateKey
        do {
            joiner = try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: [UInt8](repeating: 7, count: 32))
        } catch {
            throw FuzzFinding("cluster-join", "the fixed X25519 key cannot be made: \(error)")
        }
        let fixture = JoinFixture(
            probe: ClusterJoinProbe(
                measurement: report.measurement, rootKey: SymmetricKey(data: [UInt8](repeating: 0x5A, count: 32))),
            vector: vector, publicKeyPEM: HPKEPublicKey.x25519(joiner.publicKey).pemRepresentation)
        return fixture
    }

    /// `POST sys/cluster/join`'s body as the sponsor parses and checks it (`ClusterJoinProbe`: `JSONParser`, then
    /// `ClusterJoinSponsor.join`), posted twice to a sponsor that issued one nonce (`ClusterJoinProbe.nonceMarker` in
    /// the input stands for it). Oracles:
    /// - nothing is admitted (no report here binds the sponsor's nonce: the genuine vector's REPORT_DATA is fixed);
    /// - every refusal is a 400 or 403 whose messages all start "join refused:";
    /// - the nonce is spent first, whatever follows: a 403 for any reason but the nonce leaves it spent;
    /// - once spent, the same body again is a replay, refused (403) for its unknown nonce;
    /// - a refusal past the signature and chain check (REPORT_DATA) is of a report with the genuine signed bytes.
    static let join = FuzzTarget(
        name: "cluster-join",
        summary:
            "sys/cluster/join body: JSONParser then ClusterJoinSponsor.join (fixed sponsor, fresh nonce); never "
            + "admitted, 400/403 only, nonce spent first, replay refused, only the genuine report passes its signature",
        prepare: { () throws(FuzzFinding) in _ = try joinFixture() },
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let fixture = try joinFixture()
            let answers = fixture.probe.post([input, input], now: fixture.vector.validAt)
            let (first, unspent) = answers[0]
            switch first {
            case .notJSON: return
            case .accepted:
                throw FuzzFinding("cluster-join", "a join was admitted although no report here binds the nonce")
            case .refused(let status, let messages):
                guard status == 400 || status == 403, !messages.isEmpty,
                    messages.allSatisfy({ $0.hasPrefix("join refused: ") })
                else { throw FuzzFinding("cluster-join", "answered \(status): \(messages)") }
                let forTheNonce = messages.contains {
                    $0.contains("the nonce is unknown") || $0.contains("the nonce has expired")
                }
                if status == 403, !forTheNonce, unspent {
                    throw FuzzFinding("cluster-join", "refused past the nonce check but left the nonce unspent")
                }
                if !unspent {
                    guard case .refused(403, let again) = answers[1].outcome,
                        again.contains(where: { $0.contains("the nonce is unknown") })
                    else {
                        throw FuzzFinding(
                            "cluster-join",
                            "a replay with the spent nonce was not refused for it: \(answers[1].outcome)")
                    }
                }
                if messages.contains(where: { $0.contains("REPORT_DATA binds another key") }) {
                    let signed = AttestationReport.signedByteCount
                    guard let report = reportBytes(input), report.count >= signed,
                        report[..<signed] == fixture.vector.report[..<signed]
                    else {
                        throw FuzzFinding(
                            "cluster-join",
                            "a report whose signed bytes differ from the genuine one passed its signature")
                    }
                }
            }
        },
        seeds: { (data: TestData) throws(FuzzFinding) in
            let fixture = try joinFixture(data)
            let vector = fixture.vector
            let ders = ([vector.endorsement] + vector.candidates).map { TransitBase64.encode($0.derRepresentation) }
            let chain = ([vector.endorsement] + vector.candidates).map(\.pemRepresentation).joined(separator: "\n")
            func body(_ members: [String: Any]) throws(FuzzFinding) -> [UInt8] {
                do { return Array(try JSONSerialization.data(withJSONObject: members, options: [.sortedKeys])) } catch {
                    throw FuzzFinding("cluster-join", "a seed does not serialise: \(error)")
                }
            }
            let complete: [String: Any] = [
                "node_id": "node-2", "nonce": ClusterJoinProbe.nonceMarker,
                "report": TransitBase64.encode(vector.report), "certificates": ders,
                "public_key": fixture.publicKeyPEM,
            ]
            var pem = complete
            pem["certificates"] = chain
            var unknownField = complete
            unknownField["ttl"] = "1h"
            var wrongNonce = complete
            wrongNonce["nonce"] = String(repeating: "0", count: 64)
            var noReport = complete
            noReport["report"] = nil
            return [
                try body(complete), try body(pem), try body(unknownField), try body(wrongNonce), try body(noReport),
                Array(#"{"node_id":"n","nonce":"NNNN","report":"","certificates":[],"public_key":""}"#.utf8),
            ]
        })

    /// The report of a join body, as the sponsor decodes it (vhsmd's JSON parser keeps a repeated key's last value).
    private static func reportBytes(_ input: [UInt8]) -> [UInt8]? {
        guard case .object(let members)? = try? JSONParser.parse(input), case .string(let text)? = members["report"]
        else { return nil }
        return try? TransitBase64.decode(text)
    }

    /// The advertisements the seeds carry, signed under `advertisementKey`: the only ones that may verify.
    static let signedAdvertisements = [
        LeaderAdvertisement(nodeID: "node1", apiAddress: "https://10.0.0.1:8200", activeTime: "2026-12-07T16:00:00Z"),
        LeaderAdvertisement(nodeID: "n", apiAddress: "", activeTime: ""),
    ]
    static let advertisementKey = SymmetricKey(data: SHA256.hash(data: Array("vhsm fuzz leader key".utf8)))
    static let otherKey = SymmetricKey(data: SHA256.hash(data: Array("another cluster's key".utf8)))

    /// The lease row's `ha_value` as a standby reads it (`LeaderAdvertisement(haValue:)`) and checks it before
    /// sending any client there (`verifies(with:)`). Oracles: what parses encodes and parses back equal; only an
    /// advertisement signed under the key verifies (its node, address and time exactly a signed one's); nothing
    /// verifies under another key.
    static let leaderAdvertisement = FuzzTarget(
        name: "leader-advertisement",
        summary:
            "LeaderAdvertisement(haValue:) then verifies(with:): round trip equal, only the signed fields verify, "
            + "never under another key",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            // The column is text: PostgreSQL hands the standby valid UTF-8 only.
            guard let text = FuzzInput.text(input), let advertisement = LeaderAdvertisement(haValue: text) else {
                return
            }
            let encoded: Data
            do { encoded = try JSONEncoder().encode(advertisement) } catch {
                throw FuzzFinding("leader-advertisement", "a parsed advertisement does not encode: \(error)")
            }
            guard LeaderAdvertisement(haValue: String(decoding: encoded, as: UTF8.self)) == advertisement else {
                throw FuzzFinding("leader-advertisement", "a parsed advertisement does not survive encode then parse")
            }
            if advertisement.verifies(with: advertisementKey) {
                let fields = LeaderAdvertisement(
                    nodeID: advertisement.nodeID, apiAddress: advertisement.apiAddress,
                    activeTime: advertisement.activeTime)
                guard signedAdvertisements.contains(fields) else {
                    throw FuzzFinding(
                        "leader-advertisement",
                        "an advertisement nobody signed verifies: node '\(fields.nodeID)', address "
                            + "'\(fields.apiAddress)', time '\(fields.activeTime)'")
                }
            }
            if advertisement.verifies(with: otherKey) {
                throw FuzzFinding("leader-advertisement", "an advertisement verifies under another cluster's key")
            }
        },
        seeds: { (_: TestData) throws(FuzzFinding) in
            var seeds: [[UInt8]] = []
            for advertisement in signedAdvertisements {
                guard let signed = try? JSONEncoder().encode(advertisement.signed(with: advertisementKey)),
                    let unsigned = try? JSONEncoder().encode(advertisement)
                else { throw FuzzFinding("leader-advertisement", "a seed advertisement does not encode") }
                seeds += [Array(signed), Array(unsigned)]
            }
            seeds.append(
                Array(
                    #"{"node_id":"node1","api_addr":"https://10.0.0.1:8200","active_time":"2026-12-07T16:00:00Z","mac":"AAAA","x":[1,{"y":null}]}"#
                        .utf8))
            return seeds
        })
}
