/// "Is this genuine report acceptable?": the reference values a verifier holds. Unset fields are not checked,
/// as in go-sev-guest's validate options. Every violation is returned, not only the first.
public struct ReportPolicy: Hashable, Sendable {
    public var measurement: [UInt8]?
    public var reportData: [UInt8]?
    public var hostData: [UInt8]?
    /// Each component of REPORTED_TCB must be at least this one's.
    public var minimumTCB: TCBVersion?
    /// Each component of COMMITTED_TCB must be at least this one's. REPORTED_TCB is the host's choice
    /// (SNP_SET_CONFIG) and names the VCEK that signed the report; COMMITTED_TCB is the firmware's anti-rollback
    /// floor, the TCB a sealing agent pins and the one a minimum for sealing is about.
    public var minimumCommittedTCB: TCBVersion?
    public var vmpl: UInt32?
    /// Policy bits the guest must not have been launched with.
    public var forbidden: GuestPolicy

    public init(
        measurement: [UInt8]? = nil, reportData: [UInt8]? = nil, hostData: [UInt8]? = nil,
        minimumTCB: TCBVersion? = nil, minimumCommittedTCB: TCBVersion? = nil, vmpl: UInt32? = nil,
        forbidden: GuestPolicy = []
    ) {
        self.measurement = measurement
        self.reportData = reportData
        self.hostData = hostData
        self.minimumTCB = minimumTCB
        self.minimumCommittedTCB = minimumCommittedTCB
        self.vmpl = vmpl
        self.forbidden = forbidden
    }

    /// The policy a sealing agent (vhsm-init's volume, vhsmd's barrier) holds a launch to before it enrolls or
    /// unlocks: no DEBUG (the host could read the guest's memory, the key with it), no MIGRATE_MA (a migration
    /// agent could move the guest, its VMRK and state elsewhere), no SMT unless `allowSMT` (sibling threads share
    /// the core with the host's), and COMMITTED_TCB at least `minimumTCB` per component.
    public static func sealing(minimumTCB: TCBVersion? = nil, allowSMT: Bool = false) -> ReportPolicy {
        ReportPolicy(
            minimumCommittedTCB: minimumTCB,
            forbidden: allowSMT
                ? [.debugAllowed, .migrationAgentAllowed] : [.debugAllowed, .migrationAgentAllowed, .smtAllowed])
    }

    public func violations(in verified: VerifiedReport) -> [PolicyViolation] {
        violations(in: verified.report, layout: verified.product.tcbLayout)
    }

    /// The same checks on a report whose genuineness is established elsewhere (the emulator's own tests).
    public func violations(in report: AttestationReport, layout: TCBLayout) -> [PolicyViolation] {
        var found: [PolicyViolation] = []
        func compare(_ field: String, _ expected: [UInt8]?, _ actual: [UInt8]) {
            if let expected, expected != actual {
                found.append(PolicyViolation(field: field, expected: Hex.encode(expected), actual: Hex.encode(actual)))
            }
        }
        compare("MEASUREMENT", measurement, report.measurement)
        compare("REPORT_DATA", reportData, report.reportData)
        compare("HOST_DATA", hostData, report.hostData)
        if let vmpl, vmpl != report.vmpl {
            found.append(PolicyViolation(field: "VMPL", expected: "\(vmpl)", actual: "\(report.vmpl)"))
        }
        if let minimumTCB, let violation = PolicyViolation.below("REPORTED_TCB", minimumTCB, report.reportedTCB, layout)
        {
            found.append(violation)
        }
        if let minimumCommittedTCB,
            let violation = PolicyViolation.below("COMMITTED_TCB", minimumCommittedTCB, report.committedTCB, layout)
        {
            found.append(violation)
        }
        for (flag, name) in GuestPolicy.names where forbidden.contains(flag) && report.policy.contains(flag) {
            found.append(
                PolicyViolation(
                    field: "POLICY", expected: "\(name) not allowed",
                    actual: "0x\(String(report.policy.rawValue, radix: 16)) allows \(name)"))
        }
        return found
    }
}

/// One reference value a report does not meet: which field, what was expected, what the report says.
public struct PolicyViolation: Hashable, Sendable, CustomStringConvertible {
    public var field: String
    public var expected: String
    public var actual: String

    public init(field: String, expected: String, actual: String) {
        self.field = field
        self.expected = expected
        self.actual = actual
    }

    public var description: String { "\(field): expected \(expected), got \(actual)" }

    /// The violation of a TCB floor: `actual` below `minimum` in some component (nil when it meets it).
    public static func below(
        _ field: String, _ minimum: TCBVersion, _ actual: TCBVersion, _ layout: TCBLayout
    ) -> PolicyViolation? {
        let floor = minimum.levels(layout)
        let levels = actual.levels(layout)
        guard !levels.isAtLeast(floor) else { return nil }
        return PolicyViolation(
            field: field, expected: "at least \(floor) (\(minimum.hex))", actual: "\(levels) (\(actual.hex))")
    }
}
