public import Sealing

extension SealMode {
    /// The GUEST_FIELD_SELECT of MSG_KEY_REQ for this mode (DESIGN §4); every mode pins TCB_VERSION.
    public var guestFieldSelect: GuestFieldSelect {
        switch self {
        case .measurement: [.guestPolicy, .measurement, .tcbVersion]
        case .platform: [.guestPolicy, .tcbVersion]
        case .image: [.guestPolicy, .imageID, .familyID, .guestSVN, .tcbVersion]
        }
    }
}

/// What the measured configuration asks of a launch before it may seal or unseal (vhsm-init's volume and
/// vhsmd's barrier apply the same rule): the guest policy and TCB checks of `ReportPolicy.sealing`, and which
/// TCB a new enrollment pins.
public struct SealingRequirements: Hashable, Sendable {
    /// `min_tcb`: the lowest COMMITTED_TCB (per component) this configuration seals on.
    public var minimumTCB: TCBVersion?
    /// `allow_smt`: accept a guest policy that allows SMT.
    public var allowSMT: Bool

    public init(minimumTCB: TCBVersion? = nil, allowSMT: Bool = false) {
        self.minimumTCB = minimumTCB
        self.allowSMT = allowSMT
    }

    public var reportPolicy: ReportPolicy { .sealing(minimumTCB: minimumTCB, allowSMT: allowSMT) }

    /// Nil when this launch may enroll or unlock; otherwise every reason it may not.
    public func refusal(for report: AttestationReport) -> SealingRefusal? {
        let violations = reportPolicy.violations(in: report, layout: report.product?.tcbLayout ?? .milanGenoa)
        return violations.isEmpty ? nil : SealingRefusal(violations: violations)
    }

    /// The TCB_VERSION a new enrollment pins MSG_KEY_REQ to: COMMITTED_TCB, after `refusal(for:)` found nothing.
    ///
    /// Not REPORTED_TCB: the host sets it (SNP_SET_CONFIG) to anything up to CURRENT_TCB, so pinning it would let
    /// the host choose a low pin that a later firmware rollback derives again. Not CURRENT_TCB: it runs ahead of
    /// COMMITTED_TCB until the host commits an update, and the firmware refuses a key above COMMITTED_TCB.
    /// COMMITTED_TCB is the firmware's anti-rollback floor. The configured minimum would raise the pin where it is
    /// higher, but the firmware derives no key above COMMITTED_TCB, so such a launch is refused instead (nothing
    /// is enrolled below the minimum); whenever a pin is returned it is COMMITTED_TCB.
    public func pin(for report: AttestationReport) throws(SealingRefusal) -> TCBVersion {
        if let refusal = refusal(for: report) { throw refusal }
        return report.committedTCB
    }
}

/// Why a launch may not seal: each reference value of `ReportPolicy.sealing` it does not meet.
public struct SealingRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    public var violations: [PolicyViolation]

    public init(violations: [PolicyViolation]) { self.violations = violations }

    public var description: String {
        "this launch may not seal: " + violations.map(\.description).joined(separator: "; ")
    }
}
