import SNP

/// What the `vhsm-snp` token records about how a volume was enrolled: the seal mode, the exact
/// GUEST_FIELD_SELECT, the pinned TCB, and the launch values the key is bound to in that mode. The token is
/// host-writable; these are hints until its MAC (keyed from the sealing key) verifies, and the boot agent compares
/// them with the report before it tries any key.
struct Enrollment: Equatable, Sendable {
    var mode: SealMode
    var guestFieldSelect: GuestFieldSelect
    /// TCB_VERSION the derivation is pinned to (REPORTED_TCB at enrollment).
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

    /// The enrollment a first boot writes for `mode` from the current report: TCB pinned to REPORTED_TCB, and the
    /// mode's launch values.
    init(firstBoot mode: SealMode, report: AttestationReport) {
        self.init(mode: mode, guestFieldSelect: mode.guestFieldSelect, tcb: report.reportedTCB)
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

/// Seal modes (DESIGN §4), so the `Volume` bridge can map the token's mode string.
enum SealMode: String, CaseIterable, Sendable {
    /// GUEST_POLICY + MEASUREMENT + TCB_VERSION: this kernel + initramfs + cmdline on this chip.
    case measurement
    /// GUEST_POLICY + TCB_VERSION: this chip, any image.
    case platform
    /// GUEST_POLICY + IMAGE_ID + FAMILY_ID + GUEST_SVN + TCB_VERSION: images signed with the same ID key
    /// (the firmware always mixes in its digest) at an SVN not below the enrolled one.
    case image

    var guestFieldSelect: GuestFieldSelect {
        switch self {
        case .measurement: [.guestPolicy, .measurement, .tcbVersion]
        case .platform: [.guestPolicy, .tcbVersion]
        case .image: [.guestPolicy, .imageID, .familyID, .guestSVN, .tcbVersion]
        }
    }
}
