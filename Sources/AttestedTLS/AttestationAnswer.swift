import FoundationEssentials
import SNP
import StrictJSON

/// vhsmd's answer to `GET /v1/sys/attestation?nonce=HEX`, in Vault's envelope:
///
///     {"request_id": …, "data": {"format": "vhsm-attested-tls-v1", "nonce": "<64 hex>",
///      "report": "<standard base64 of the raw report>", "certificates": ["<standard base64 DER>", …],
///      "spki_sha256": "<64 hex>"}, …}
///
/// Parsed strictly (StrictJSON: duplicate keys refused, so no reader sees another value than this one) and
/// completely: every field named above must have its type. The content is not judged here: a wrong format, nonce
/// or report length is for `EvidenceCheck` to name with what was expected.
public struct AttestationAnswer: Equatable, Sendable {
    public var evidence: AttestationEvidence
    /// `data.spki_sha256`: the key the server says it binds (informative: the handshake's key is what counts).
    public var announcedSPKISHA256: [UInt8]?

    public init(evidence: AttestationEvidence, announcedSPKISHA256: [UInt8]?) {
        self.evidence = evidence
        self.announcedSPKISHA256 = announcedSPKISHA256
    }

    /// Parses an answer with `status` and `body` from `place` (`https://host:port`, for messages). Any status but
    /// 200 is a `serverError` with Vault's `errors` (when the body has them) and `retryAfter`.
    public init(status: Int, body: [UInt8], retryAfter: String? = nil, place: String) throws(AttestedTLSError) {
        guard status == 200 else {
            throw .serverError(
                place: place, status: status, errors: Self.vaultErrors(body), retryAfter: retryAfter)
        }
        func malformed(_ reason: String) -> AttestedTLSError { .malformedAnswer(place: place, reason: reason) }
        let json: JSON
        do { json = try JSON.parse(body) } catch { throw malformed("JSON that does not parse (\(error))") }
        guard case .object = json else { throw malformed("a JSON \(json.kind) where an object belongs") }
        guard let data = json["data"] else { throw malformed("no 'data' object") }
        guard case .object = data else { throw malformed("'data' as a \(data.kind), not an object") }

        func string(_ key: String) throws(AttestedTLSError) -> String {
            guard let value = data[key] else { throw malformed("no 'data.\(key)'") }
            guard case .string(let text) = value else {
                throw malformed("'data.\(key)' as a \(value.kind), not a string")
            }
            return text
        }
        func hex(_ key: String, count: Int) throws(AttestedTLSError) -> [UInt8] {
            let text = try string(key)
            do { return try Hex.decode(text, count: count) } catch {
                throw malformed("'data.\(key)' that is not \(count) bytes of hex (\(error))")
            }
        }
        func base64(_ text: String, _ what: String) throws(AttestedTLSError) -> [UInt8] {
            guard let bytes = Data(base64Encoded: text) else {
                throw malformed("\(what) that is not standard base64 (RFC 4648 §4, padded, no line breaks)")
            }
            return Array(bytes)
        }

        let format = try string("format")
        let nonce = try hex("nonce", count: AttestedTLSBinding.nonceCount)
        let report = try base64(try string("report"), "'data.report'")
        guard report.count <= 4096 else {
            throw malformed("a 'data.report' of \(report.count) bytes; a report is \(AttestationReport.byteCount)")
        }
        guard let list = data["certificates"] else {
            throw malformed("no 'data.certificates' (an empty list is allowed)")
        }
        guard case .array(let entries) = list else {
            throw malformed("'data.certificates' as a \(list.kind), not a list")
        }
        guard entries.count <= AttestationEvidence.maximumCertificates else {
            throw malformed(
                "\(entries.count) certificates; the chain is at most \(AttestationEvidence.maximumCertificates)")
        }
        var certificates: [[UInt8]] = []
        for (index, entry) in entries.enumerated() {
            guard case .string(let text) = entry else {
                throw malformed("'data.certificates[\(index)]' as a \(entry.kind), not a string")
            }
            let der = try base64(text, "'data.certificates[\(index)]'")
            guard der.count <= AttestationEvidence.maximumCertificateBytes else {
                throw malformed(
                    "'data.certificates[\(index)]' of \(der.count) bytes, more than "
                        + "\(AttestationEvidence.maximumCertificateBytes)")
            }
            certificates.append(der)
        }
        var announced: [UInt8]?
        if data["spki_sha256"] != nil { announced = try hex("spki_sha256", count: 32) }
        evidence = AttestationEvidence(format: format, nonce: nonce, report: report, certificates: certificates)
        announcedSPKISHA256 = announced
    }

    /// Vault's `{"errors": ["…", …]}`; a body that is not that is summarised (at most 200 characters, as text).
    static func vaultErrors(_ body: [UInt8]) -> [String] {
        if let json = try? JSON.parse(body), case .array(let entries)? = json["errors"] {
            return entries.map { entry in
                if case .string(let text) = entry { return text }
                return entry.serialized
            }
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
            .split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return text.isEmpty ? [] : [text + (body.count > 200 ? "…" : "")]
    }
}
