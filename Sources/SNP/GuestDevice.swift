/// What a guest can ask of the AMD Secure Processor: the seam between the boot agent and
/// `/dev/sev-guest`, configfs-tsm or the emulator.
///
/// Implementations move messages; they return the firmware's response with its STATUS unchecked, as the
/// kernel does. `attestationReport(_:)` and `derivedKey(_:)` check it.
public protocol GuestDevice: Sendable {
    /// A short name for messages: `/dev/sev-guest`, `configfs-tsm`, `emulator at /run/snp.sock`.
    var name: String { get }
    /// MSG_REPORT_REQ → MSG_REPORT_RSP.
    func report(_ request: ReportRequest) throws -> ReportResponse
    /// An extended report: the report and the host's certificate table.
    func extendedReport(_ request: ReportRequest) throws -> (ReportResponse, CertificateTable)
    /// MSG_KEY_REQ → MSG_KEY_RSP.
    func derivedKey(_ request: DerivedKeyRequest) throws -> DerivedKeyResponse
}

extension GuestDevice {
    /// A report with STATUS checked.
    public func attestationReport(_ request: ReportRequest) throws -> AttestationReport {
        try report(request).checked()
    }

    /// A 32-byte derived key with STATUS checked.
    public func derivedKeyBytes(_ request: DerivedKeyRequest) throws -> [UInt8] {
        var response = try derivedKey(request)
        defer { response.zeroize() }
        return try response.checked()
    }
}
