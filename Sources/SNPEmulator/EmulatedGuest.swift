import Crypto
public import SNP
import Synchronization

/// One launched guest on an emulated chip: the Secure Processor's view of it (launch context, a VMRK drawn at
/// launch, a random REPORT_ID) and the firmware's answers to its requests.
///
/// A behaving model, not canned answers: reports are filled from the launch context and signed by the VCEK
/// of the reported TCB over bytes 0x000–0x29F; derived keys follow the firmware KDF (reference/snp-facts.md
/// §3) with its mix-data block and its rejection rules.
public final class EmulatedGuest: GuestDevice {
    public let chip: ChipState
    public let launch: LaunchContext
    public let name: String
    /// The VM root key, random per launch.
    private let vmrk: [UInt8]
    private let reportID: [UInt8]
    private let store: ChipStore?
    private let certificates = Mutex<CertificateTable?>(nil)

    /// Launches a guest. The firmware refuses a policy with reserved bits, without bit 17, or asking for a
    /// newer ABI than it implements.
    public init(
        chip: ChipState, launch: LaunchContext, store: ChipStore? = nil, name: String = "emulator"
    )
        throws(EmulatorError)
    {
        let policy = launch.policy
        guard policy.contains(.reservedMustBeOne) else {
            throw .launchRefused(.policyFailure, reason: "POLICY bit 17 (reserved, must be 1) is clear")
        }
        guard policy.rawValue & GuestPolicy.reservedMask == 0 else {
            throw .launchRefused(.policyFailure, reason: "POLICY sets reserved bits 63:26")
        }
        let firmware = chip.profile.firmware
        guard (policy.abiMajor, policy.abiMinor) <= (firmware.major, firmware.minor) else {
            throw .launchRefused(
                .policyFailure,
                reason: "POLICY asks for ABI \(policy.abiMajor).\(policy.abiMinor), the firmware is \(firmware)")
        }
        guard launch.measurement.count == 48, launch.hostData.count == 32, launch.callerVMPL <= 3 else {
            throw .launchRefused(.invalidParam, reason: "MEASUREMENT must be 48 bytes, HOST_DATA 32, VMPL 0–3")
        }
        self.chip = chip
        self.launch = launch
        self.store = store
        self.name = name
        vmrk = randomBytes(32)
        reportID = randomBytes(32)
    }

    // MARK: Reports

    public func report(_ request: ReportRequest) -> ReportResponse {
        if let refusal = check(request) { return ReportResponse(status: refusal, report: nil) }
        return ReportResponse(status: .success, report: makeReport(request))
    }

    /// MSG_REPORT_REQ bytes as the wire carries them; a malformed request is INVALID_PARAM, as in firmware.
    public func report(requestBytes: [UInt8]) -> ReportResponse {
        guard let request = try? ReportRequest(bytes: requestBytes) else {
            return ReportResponse(status: .invalidParam, report: nil)
        }
        return report(request)
    }

    public func extendedReport(_ request: ReportRequest) throws -> (ReportResponse, CertificateTable) {
        (report(request), try certificateTable())
    }

    /// The host's certificate table for this chip: VCEK (of REPORTED_TCB), ASK, ARK.
    public func certificateTable() throws -> CertificateTable {
        if let cached = certificates.withLock({ $0 }) { return cached }
        let vcek = try store?.vcek(for: chip, tcb: chip.reportedTCB) ?? chip.mintVCEK(for: chip.reportedTCB)
        let table = CertificateTable(entries: [
            .init(kind: .vcek, data: vcek.derRepresentation), .init(kind: .ask, data: chip.ask.derRepresentation),
            .init(kind: .ark, data: chip.ark.derRepresentation),
        ])
        certificates.withLock { $0 = table }
        return table
    }

    private func check(_ request: ReportRequest) -> FirmwareStatus? {
        guard request.vmpl <= 3, request.vmpl >= launch.callerVMPL, request.keySelect & ~0x3 == 0 else {
            return .invalidParam
        }
        switch request.keySelect {
        case 0, 1: return nil
        case 2: return .invalidKey  // no VLEK is loaded on an emulated chip
        default: return .invalidParam
        }
    }

    private func makeReport(_ request: ReportRequest) -> AttestationReport {
        let profile = chip.profile
        var report = AttestationReport(version: profile.reportVersion)
        report.guestSVN = launch.idBlock?.guestSVN ?? 0
        report.policy = launch.policy
        report.familyID = launch.idBlock?.familyID ?? Array(repeating: 0, count: 16)
        report.imageID = launch.idBlock?.imageID ?? Array(repeating: 0, count: 16)
        report.vmpl = request.vmpl
        report.signatureAlgorithm = 1
        report.currentTCB = chip.currentTCBVersion
        report.platformInfo = profile.platformInfo
        report.keyInfo = KeyInfo(signingKey: .vcek, authorKeyEnabled: launch.idBlock?.authorKeyDigest != nil)
        report.reportData = request.reportData
        report.measurement = launch.measurement
        report.hostData = launch.hostData
        report.idKeyDigest = launch.idBlock?.idKeyDigest ?? Array(repeating: 0, count: 48)
        report.authorKeyDigest = launch.idBlock?.authorKeyDigest ?? Array(repeating: 0, count: 48)
        report.reportID = reportID
        report.reportIDMA = Array(repeating: 0xFF, count: 32)
        report.reportedTCB = chip.reportedTCBVersion
        if profile.reportVersion >= 3 {
            report.cpuidFamilyID = profile.cpuidFamily
            report.cpuidModelID = profile.cpuidModel
            report.cpuidStepping = profile.cpuidStepping
        }
        report.chipID = chip.chipID
        report.committedTCB = chip.tcbVersion
        report.currentVersion = profile.firmware
        report.committedVersion = profile.firmware
        // One launch per guest here, on the firmware running now.
        report.launchTCB = chip.currentTCBVersion
        // REPORTED_TCB is at most CURRENT_TCB (ChipState keeps it so), where the seed chain starts: its VCEK exists.
        let key = chip.vcekKey(for: chip.reportedTCB)!
        if let signature = try? key.signature(for: SHA384.hash(data: report.signedBytes)) {
            report.signature = ReportSignature(signature)
        }
        return report
    }

    // MARK: Derived keys

    public func derivedKey(_ request: DerivedKeyRequest) -> DerivedKeyResponse {
        switch derive(request) {
        case .key(let key): DerivedKeyResponse(status: .success, key: key)
        case .refused(let status): DerivedKeyResponse(status: status)
        }
    }

    /// MSG_KEY_REQ bytes as the wire carries them.
    public func derivedKey(requestBytes: [UInt8]) -> DerivedKeyResponse {
        guard let request = try? DerivedKeyRequest(bytes: requestBytes) else {
            return DerivedKeyResponse(status: .invalidParam)
        }
        return derivedKey(request)
    }

    private enum Derivation {
        case key([UInt8])
        case refused(FirmwareStatus)
    }

    private func derive(_ request: DerivedKeyRequest) -> Derivation {
        let fields = request.guestFieldSelect
        // Reserved fields, and bit 6 (LAUNCH_MIT_VECTOR) which message version 1 cannot carry.
        guard request.reserved == 0, request.rootKeySelect & ~0x7 == 0, fields.rawValue & ~0x3F == 0 else {
            return .refused(FirmwareStatus.invalidParam)
        }
        guard request.vmpl <= 3, request.vmpl >= launch.callerVMPL else { return .refused(FirmwareStatus.invalidParam) }
        if fields.contains(.guestSVN), request.guestSVN > (launch.idBlock?.guestSVN ?? 0) {
            return .refused(FirmwareStatus.invalidParam)
        }
        let layout = chip.product.tcbLayout
        // A pinned TCB_VERSION may be anything up to COMMITTED_TCB per component (not CURRENT_TCB, not the
        // host-set REPORTED_TCB), with the layout's reserved bytes zero.
        if fields.contains(.tcbVersion) {
            let requested = request.tcbVersion
            guard !requested.hasReservedBits(layout),
                requested.levels(layout).components.allSatisfy({
                    (requested.levels(layout)[$0] ?? 0) <= (chip.tcb[$0] ?? 0)
                })
            else { return .refused(FirmwareStatus.invalidParam) }
        }

        let root: [UInt8]
        if request.usesVMRK {
            root = vmrk
        } else {
            switch request.keySelect {
            case 0, 1:
                // Unpinned, the VCEK root follows the firmware running now.
                let tcb = fields.contains(.tcbVersion) ? request.tcbVersion.levels(layout) : chip.currentTCB
                guard let seed = chip.seedChain.vcekSeed(for: tcb) else { return .refused(FirmwareStatus.invalidParam) }
                root = seed
            default:
                return .refused(FirmwareStatus.invalidKey)  // VLEK requested but none loaded, or KEY_SEL 3
            }
        }
        var mix = ByteWriter(capacity: 168)
        let idKeySelect: UInt32 = launch.idBlock == nil ? 0 : (launch.idBlock?.authorKeyDigest == nil ? 1 : 2)
        mix.integer((request.usesVMRK ? 1 : 0) | idKeySelect << 1)
        mix.integer(UInt32(0))
        mix.integer(fields.rawValue)
        mix.integer(request.vmpl)
        mix.integer(fields.contains(.guestSVN) ? request.guestSVN : 0)
        mix.integer(fields.contains(.tcbVersion) ? request.tcbVersion.rawValue : 0)
        mix.integer(fields.contains(.guestPolicy) ? launch.policy.rawValue : 0)
        mix.bytes(fields.contains(.imageID) ? launch.idBlock?.imageID ?? zeros(16) : zeros(16))
        mix.bytes(fields.contains(.familyID) ? launch.idBlock?.familyID ?? zeros(16) : zeros(16))
        mix.bytes(fields.contains(.measurement) ? Array(launch.measurement.prefix(32)) : zeros(32))
        mix.bytes(launch.hostData)
        let signerDigest = launch.idBlock.map { $0.authorKeyDigest ?? $0.idKeyDigest } ?? zeros(48)
        mix.bytes(Array(signerDigest.prefix(32)))

        // NIST SP 800-108 counter mode, HMAC-SHA-256, one block: i=1 ‖ label ‖ 0x00 ‖ context ‖ L=256.
        var input = ByteWriter()
        input.integer(UInt32(1))
        input.bytes(Array("gmsg-keyreq".utf8))
        input.bytes([0])
        input.bytes(mix.bytes)
        input.integer(UInt32(256))
        let key = HMAC<SHA256>.authenticationCode(for: input.bytes, using: SymmetricKey(data: root))
        return .key(Array(key))
    }

    private func zeros(_ count: Int) -> [UInt8] { Array(repeating: 0, count: count) }
}
