public import SNP

/// What a client expects of the VM behind vhsmd (go-sev-guest's validation vocabulary). Lists are any-of; every
/// field given must hold. At least one identity (a measurement, an ID key digest or an author key digest) is
/// required: "some SEV-SNP VM" is not an identity.
public struct ReferenceValues: Hashable, Sendable {
    /// MEASUREMENT is one of these (48 bytes each).
    public var measurements: [[UInt8]]
    /// ID_KEY_DIGEST is one of these (48 bytes each): the image was signed with a trusted ID key.
    public var idKeyDigests: [[UInt8]]
    /// AUTHOR_KEY_DIGEST is one of these (48 bytes each).
    public var authorKeyDigests: [[UInt8]]
    /// GUEST_SVN at least this (signed images).
    public var minimumGuestSVN: UInt32?
    /// HOST_DATA equal to this (32 bytes).
    public var hostData: [UInt8]?
    /// Each component of REPORTED_TCB at least this one's.
    public var minimumTCB: TCBVersion?
    /// Accept a guest policy that allows DEBUG (the host can read and change a debug guest's memory).
    public var allowDebug: Bool

    public init(
        measurements: [[UInt8]] = [], idKeyDigests: [[UInt8]] = [], authorKeyDigests: [[UInt8]] = [],
        minimumGuestSVN: UInt32? = nil, hostData: [UInt8]? = nil, minimumTCB: TCBVersion? = nil,
        allowDebug: Bool = false
    ) {
        self.measurements = measurements
        self.idKeyDigests = idKeyDigests
        self.authorKeyDigests = authorKeyDigests
        self.minimumGuestSVN = minimumGuestSVN
        self.hostData = hostData
        self.minimumTCB = minimumTCB
        self.allowDebug = allowDebug
    }

    /// True when a measurement, an ID key digest or an author key digest is given.
    public var namesAnIdentity: Bool {
        !measurements.isEmpty || !idKeyDigests.isEmpty || !authorKeyDigests.isEmpty
    }

    /// Every reference value the report does not meet.
    public func violations(in verified: VerifiedReport) -> [PolicyViolation] {
        violations(in: verified.report, layout: verified.product.tcbLayout)
    }

    /// The same on a report whose genuineness is not established (to list every problem of a refused one).
    public func violations(in report: AttestationReport, layout: TCBLayout) -> [PolicyViolation] {
        var found: [PolicyViolation] = []
        func anyOf(_ field: String, _ expected: [[UInt8]], _ actual: [UInt8]) {
            guard !expected.isEmpty, !expected.contains(actual) else { return }
            found.append(
                PolicyViolation(
                    field: field,
                    expected: (expected.count == 1 ? "" : "one of ")
                        + expected.map(Hex.encode).joined(separator: ", "),
                    actual: Hex.encode(actual)))
        }
        anyOf("MEASUREMENT", measurements, report.measurement)
        anyOf("ID_KEY_DIGEST", idKeyDigests, report.idKeyDigest)
        anyOf("AUTHOR_KEY_DIGEST", authorKeyDigests, report.authorKeyDigest)
        if let minimumGuestSVN, report.guestSVN < minimumGuestSVN {
            found.append(
                PolicyViolation(
                    field: "GUEST_SVN", expected: "at least \(minimumGuestSVN)", actual: "\(report.guestSVN)"))
        }
        let policy = ReportPolicy(
            hostData: hostData, minimumTCB: minimumTCB, forbidden: allowDebug ? [] : [.debugAllowed])
        found += policy.violations(in: report, layout: layout)
        return found
    }
}
