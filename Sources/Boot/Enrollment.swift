import SNP
import Sealing

/// What the `vhsm-snp` token records about how a volume was enrolled: the seal mode, the exact
/// GUEST_FIELD_SELECT, the pinned TCB, and the launch values the key is bound to in that mode. The token is
/// host-writable; these are hints until its MAC (keyed from the sealing key) verifies, and the boot agent compares
/// them with the report before it tries any key.
struct Enrollment: Equatable, Sendable {
    var mode: SealMode
    var guestFieldSelect: GuestFieldSelect
    /// TCB_VERSION the derivation is pinned to (`SealingRequirements.pin(for:)` at enrollment: COMMITTED_TCB).
    var tcb: TCBVersion
    /// Measurement mode: MEASUREMENT at enrollment (48 bytes).
    var measurement: [UInt8]?
    /// Image mode: IMAGE_ID and FAMILY_ID of the ID block (16 bytes each).
    var imageID: [UInt8]?
    var familyID: [UInt8]?
    /// Image mode: GUEST_SVN at enrollment, the one the key is derived with; a lower SVN is a rollback.
    var guestSVN: UInt32?

    init(
        mode: SealMode, guestFieldSelect: GuestFieldSelect, tcb: TCBVersion, measurement: [UInt8]? = nil,
        imageID: [UInt8]? = nil, familyID: [UInt8]? = nil, guestSVN: UInt32? = nil
    ) {
        self.mode = mode
        self.guestFieldSelect = guestFieldSelect
        self.tcb = tcb
        self.measurement = measurement
        self.imageID = imageID
        self.familyID = familyID
        self.guestSVN = guestSVN
    }

    /// The enrollment a first boot writes for `mode` from the current report: the TCB `requirements` pin
    /// (COMMITTED_TCB, never the host-set REPORTED_TCB), and the mode's launch values. A launch the requirements
    /// refuse (DEBUG, MIGRATE_MA, SMT unless allowed, COMMITTED_TCB below min_tcb) is not enrolled.
    init(
        firstBoot mode: SealMode, report: AttestationReport, requirements: SealingRequirements
    )
        throws(SealingRefusal)
    {
        self.init(mode: mode, guestFieldSelect: mode.guestFieldSelect, tcb: try requirements.pin(for: report))
        switch mode {
        case .measurement: measurement = report.measurement
        case .platform: break
        case .image:
            imageID = report.imageID
            familyID = report.familyID
            guestSVN = report.guestSVN
        }
    }

    /// MSG_KEY_REQ for this enrollment: root key VCEK (KEY_SEL 1, never the VLEK), VMPL 0, the mode's fields, the
    /// pinned TCB and (image mode) the enrolled SVN.
    var keyRequest: DerivedKeyRequest {
        DerivedKeyRequest(
            root: .vcek, guestFieldSelect: guestFieldSelect, vmpl: 0,
            guestSVN: guestFieldSelect.contains(.guestSVN) ? guestSVN ?? 0 : 0, tcbVersion: tcb)
    }
}
