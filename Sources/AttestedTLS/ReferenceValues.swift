public import SNP

/// What is expected of an SEV-SNP VM, in go-sev-guest's validation vocabulary (`validate.Options`): what a client
/// expects of the VM behind vhsmd (`vhsm server verify`), and what a role of `auth/sev-snp` or a join policy
/// expects of a workload. Lists are any-of; every field given must hold. At least one identity (a measurement, an
/// ID key digest or an author key digest) is required: "some SEV-SNP VM" is not an identity.
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
    /// FAMILY_ID is one of these (16 bytes each; set by the ID block of a signed image).
    public var familyIDs: [[UInt8]]
    /// IMAGE_ID is one of these (16 bytes each; set by the ID block of a signed image).
    public var imageIDs: [[UInt8]]
    /// The report comes from one of these product lines (the verified chain's, else the report's CPUID).
    public var products: [Product]
    /// CHIP_ID is one of these (64 bytes each): the VM runs on one of these processors. Only a VCEK-signed report
    /// names its chip: a VLEK-signed one is refused when this is set.
    public var chipIDs: [[UInt8]]
    /// VMPL equal to this (the privilege level that asked for the report; 0 is the most privileged).
    public var vmpl: UInt32?
    /// Accept a report signed with a VLEK (a cloud provider's key, not the chip's own VCEK).
    public var allowVLEK: Bool
    /// Accept firmware not yet committed: COMMITTED_TCB at most CURRENT_TCB per component. When false (the
    /// default), COMMITTED_TCB must equal CURRENT_TCB and the committed firmware version the current one, so that
    /// the host cannot roll the firmware back below what the report shows.
    public var permitProvisionalFirmware: Bool
    /// Each component of LAUNCH_TCB (the TCB when the guest was launched) at least this one's.
    public var minimumLaunchTCB: TCBVersion?

    public init(
        measurements: [[UInt8]] = [], idKeyDigests: [[UInt8]] = [], authorKeyDigests: [[UInt8]] = [],
        minimumGuestSVN: UInt32? = nil, hostData: [UInt8]? = nil, minimumTCB: TCBVersion? = nil,
        allowDebug: Bool = false, familyIDs: [[UInt8]] = [], imageIDs: [[UInt8]] = [], products: [Product] = [],
        chipIDs: [[UInt8]] = [], vmpl: UInt32? = nil, allowVLEK: Bool = true, permitProvisionalFirmware: Bool = false,
        minimumLaunchTCB: TCBVersion? = nil
    ) {
        self.measurements = measurements
        self.idKeyDigests = idKeyDigests
        self.authorKeyDigests = authorKeyDigests
        self.minimumGuestSVN = minimumGuestSVN
        self.hostData = hostData
        self.minimumTCB = minimumTCB
        self.allowDebug = allowDebug
        self.familyIDs = familyIDs
        self.imageIDs = imageIDs
        self.products = products
        self.chipIDs = chipIDs
        self.vmpl = vmpl
        self.allowVLEK = allowVLEK
        self.permitProvisionalFirmware = permitProvisionalFirmware
        self.minimumLaunchTCB = minimumLaunchTCB
    }

    /// True when a measurement, an ID key digest or an author key digest is given.
    public var namesAnIdentity: Bool {
        !measurements.isEmpty || !idKeyDigests.isEmpty || !authorKeyDigests.isEmpty
    }

    /// Every reference value the report does not meet.
    public func violations(in verified: VerifiedReport) -> [PolicyViolation] {
        violations(
            in: verified.report, layout: verified.product.tcbLayout, product: verified.product, signer: verified.signer)
    }

    /// The same on a report whose genuineness is not established (to list every problem of a refused one): its
    /// product and signer are what the report itself claims (CPUID, KEY_INFO).
    public func violations(in report: AttestationReport, layout: TCBLayout) -> [PolicyViolation] {
        violations(in: report, layout: layout, product: report.product, signer: report.keyInfo.signingKey)
    }

    private func violations(
        in report: AttestationReport, layout: TCBLayout, product: Product?, signer: KeyInfo.SigningKey?
    ) -> [PolicyViolation] {
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
        anyOf("FAMILY_ID", familyIDs, report.familyID)
        anyOf("IMAGE_ID", imageIDs, report.imageID)
        if !products.isEmpty, product.map({ !products.contains($0) }) ?? true {
            found.append(
                PolicyViolation(
                    field: "PRODUCT",
                    expected: (products.count == 1 ? "" : "one of ") + products.map(\.name).joined(separator: ", "),
                    actual: product?.name ?? "a report that does not name its product"))
        }
        let signerName = signer.map(\.description) ?? "signing key \(report.keyInfo.signingKeyField)"
        if !chipIDs.isEmpty, signer != .vcek {
            found.append(
                PolicyViolation(
                    field: "CHIP_ID",
                    expected: "a VCEK-signed report from " + (chipIDs.count == 1 ? "" : "one of ")
                        + chipIDs.map(Hex.encode).joined(separator: ", "),
                    actual: "a report signed with the \(signerName), which names no chip"))
        } else {
            anyOf("CHIP_ID", chipIDs, report.chipID)
        }
        if !allowVLEK, signer != .vcek {
            found.append(PolicyViolation(field: "SIGNER", expected: "VCEK (VLEK not allowed)", actual: signerName))
        }
        let committed = report.committedTCB.levels(layout)
        let current = report.currentTCB.levels(layout)
        if permitProvisionalFirmware {
            if !current.isAtLeast(committed) {
                found.append(
                    PolicyViolation(
                        field: "COMMITTED_TCB",
                        expected: "at most CURRENT_TCB \(current) (\(report.currentTCB.hex)) in each component",
                        actual: "\(committed) (\(report.committedTCB.hex))"))
            }
        } else {
            if report.committedTCB != report.currentTCB {
                found.append(
                    PolicyViolation(
                        field: "COMMITTED_TCB",
                        expected:
                            "equal to CURRENT_TCB \(current) (\(report.currentTCB.hex)): provisional firmware not "
                            + "permitted",
                        actual: "\(committed) (\(report.committedTCB.hex))"))
            }
            if report.committedVersion != report.currentVersion {
                found.append(
                    PolicyViolation(
                        field: "COMMITTED_VERSION",
                        expected: "equal to the current firmware version \(report.currentVersion): provisional "
                            + "firmware not permitted",
                        actual: "\(report.committedVersion)"))
            }
        }
        if let minimumLaunchTCB,
            let violation = PolicyViolation.below("LAUNCH_TCB", minimumLaunchTCB, report.launchTCB, layout)
        {
            found.append(violation)
        }
        let policy = ReportPolicy(
            hostData: hostData, minimumTCB: minimumTCB, vmpl: vmpl, forbidden: allowDebug ? [] : [.debugAllowed])
        found += policy.violations(in: report, layout: layout)
        return found
    }
}
