import Crypto

/// Offline launch measurements, reproducing sev-snp-measure 0.0.13: the SEV-SNP MEASUREMENT (the final
/// GCTX.LD, reported at 0x090 of every attestation report) and the SEV/SEV-ES launch digests.
///
/// SNP replays QEMU's launch updates in order: every firmware page as NORMAL (the image ends at 4 GiB),
/// then the SEV metadata sections in table order, then one VMSA per vCPU, BSP first.
public enum LaunchDigest {
    /// SEV-SNP MEASUREMENT (48 bytes). Refuses (throws) where sev-snp-measure would compute something
    /// meaningless or crash: firmware size not a multiple of 4096 (`.firmwareSizeNotPageMultiple`), no SEV
    /// metadata at all (`.noSEVMetadata`; the reference silently measures firmware + VMSAs), kernel given but
    /// no SNP_KERNEL_HASHES section (`.noKernelHashesSection`, the reference's own error), missing SEV-ES reset
    /// block, vcpus < 1, a hashes section whose size is not 4096 with a kernel, unknown section type, bad
    /// ASEV signature or version.
    public static func snp(_ inputs: LaunchInputs) throws(MeasurementError) -> [UInt8] {
        let context = try snpContext(inputs, tracing: false)
        return context.digest
    }

    /// The same, also returning every PAGE_INFO update in order (for tests and `--trace` debugging).
    public static func snpTrace(
        _ inputs: LaunchInputs
    ) throws(MeasurementError) -> (digest: [UInt8], updates: [PageInfo]) {
        let context = try snpContext(inputs, tracing: true)
        return (context.digest, context.trace ?? [])
    }

    /// `--mode snp:ovmf-hash`: the launch digest after the firmware pages only, the seed for
    /// `LaunchInputs.ovmfHash`.
    public static func ovmfHash(_ ovmf: [UInt8]) throws(MeasurementError) -> [UInt8] {
        _ = try OVMFImage(bytes: ovmf)  // the reference parses the image here too
        var context = GuestContext()
        try measureFirmware(ovmf, into: &context)
        return context.digest
    }

    /// SEV-ES launch digest (SHA-256, 32 bytes): SHA-256(firmware ‖ padded hashes table if a kernel is
    /// given ‖ one VMSA per vCPU with SEV_FEATURES 0). A kernel needs the hash table block with GPA ≠ 0.
    public static func sevES(_ inputs: LaunchInputs) throws(MeasurementError) -> [UInt8] {
        let image = try OVMFImage(bytes: inputs.ovmf)
        guard inputs.vcpus >= 1 else { throw .vcpuCountInvalid(inputs.vcpus) }
        let table = try sevHashTable(inputs, image: image)
        guard let apEIP = image.sevESResetEIP else { throw .noSEVESResetBlock }
        var hash = SHA256()
        inputs.ovmf.withUnsafeBytes { hash.update(bufferPointer: $0) }
        if let table { hash.update(data: table) }
        let pages = vmsaPages(inputs, apEIP: apEIP, guestFeatures: 0)
        for vcpu in 0..<inputs.vcpus { hash.update(data: vcpu == 0 ? pages.bsp : pages.ap) }
        return Array(hash.finalize())
    }

    /// SEV launch digest (SHA-256, 32 bytes): SHA-256(firmware ‖ padded hashes table if a kernel is given).
    /// Without a kernel it is the firmware's SHA-256. vCPUs play no part.
    public static func sev(_ inputs: LaunchInputs) throws(MeasurementError) -> [UInt8] {
        let image = try OVMFImage(bytes: inputs.ovmf)
        let table = try sevHashTable(inputs, image: image)
        var hash = SHA256()
        inputs.ovmf.withUnsafeBytes { hash.update(bufferPointer: $0) }
        if let table { hash.update(data: table) }
        return Array(hash.finalize())
    }

    // MARK: - SNP

    /// One planned metadata update: zero contents, or the SHA-384 of the hashes page.
    private struct Update {
        var type: PageInfo.PageType
        var gpa: UInt64
        var contents: SHA384.Digest?
    }

    /// Validates everything first, then hashes: a refused input costs no firmware hashing.
    private static func snpContext(_ inputs: LaunchInputs, tracing: Bool) throws(MeasurementError) -> GuestContext {
        let image = try OVMFImage(bytes: inputs.ovmf)
        guard inputs.vcpus >= 1 else { throw .vcpuCountInvalid(inputs.vcpus) }
        if let seed = inputs.ovmfHash, seed.count != GuestContext.digestByteCount {
            throw .ovmfHashLengthInvalid(seed.count)
        }
        if inputs.ovmfHash == nil, inputs.ovmf.count % 4096 != 0 {
            throw .firmwareSizeNotPageMultiple(size: inputs.ovmf.count)
        }
        if inputs.kernel != nil, !image.hasKernelHashesSection { throw .noKernelHashesSection }
        guard !image.metadataSections.isEmpty else { throw .noSEVMetadata }
        guard let apEIP = image.sevESResetEIP else { throw .noSEVESResetBlock }
        let updates = try metadataUpdates(inputs, image: image)
        let pages = vmsaPages(inputs, apEIP: apEIP, guestFeatures: inputs.guestFeatures)

        var context: GuestContext
        if let seed = inputs.ovmfHash {
            context = GuestContext(seed: seed, tracing: tracing)
        } else {
            context = GuestContext(tracing: tracing)
            try measureFirmware(inputs.ovmf, into: &context)
        }
        for update in updates {
            if let contents = update.contents {
                context.update(update.type, gpa: update.gpa, contents: contents)
            } else {
                context.update(update.type, gpa: update.gpa)
            }
        }
        let bsp = SHA384.hash(data: pages.bsp)
        let ap = inputs.vcpus > 1 ? SHA384.hash(data: pages.ap) : bsp
        for vcpu in 0..<inputs.vcpus {
            context.update(.vmsa, gpa: GuestContext.vmsaGPA, contents: vcpu == 0 ? bsp : ap)
        }
        return context
    }

    /// Every firmware page as NORMAL, the image ending at 4 GiB.
    private static func measureFirmware(_ ovmf: [UInt8], into context: inout GuestContext) throws(MeasurementError) {
        guard ovmf.count % 4096 == 0 else { throw .firmwareSizeNotPageMultiple(size: ovmf.count) }
        context.updateNormalPages(gpa: (1 << 32) - UInt64(ovmf.count), data: ovmf)
    }

    /// The metadata sections' updates in table order (QEMU `snp_populate_metadata_pages`); under EC2 the
    /// CPUID pages move after all other sections.
    private static func metadataUpdates(_ inputs: LaunchInputs, image: OVMFImage) throws(MeasurementError) -> [Update] {
        var hashesPage: SHA384.Digest?
        if let kernel = inputs.kernel {
            guard let tableGPA = image.hashTableGPA else { throw .noHashTableEntry }
            let table = SEVHashTable.padded(kernel: kernel, initrd: inputs.initrd, cmdline: inputs.append)
            hashesPage = SHA384.hash(data: try SEVHashTable.page(table: table, tableGPA: tableGPA))
        }
        var updates: [Update] = []
        func pages(_ section: SEVMetadataSection, _ type: PageInfo.PageType) throws(MeasurementError) {
            updates += try section.pageGPAs().map { Update(type: type, gpa: $0, contents: nil) }
        }
        for section in image.metadataSections {
            switch section.kind {
            case .secMem: try pages(section, inputs.vmmType == .gce ? .unmeasured : .zero)
            case .secrets: updates.append(Update(type: .secrets, gpa: UInt64(section.gpa), contents: nil))
            case .cpuid where inputs.vmmType == .ec2: break
            case .cpuid: updates.append(Update(type: .cpuid, gpa: UInt64(section.gpa), contents: nil))
            case .svsmCAA: try pages(section, .zero)
            case .kernelHashes:
                if let hashesPage {
                    guard section.size == 4096 else { throw .kernelHashesSectionSize(section.size) }
                    updates.append(Update(type: .normal, gpa: UInt64(section.gpa), contents: hashesPage))
                } else {
                    try pages(section, .zero)
                }
            }
        }
        if inputs.vmmType == .ec2 {
            for section in image.metadataSections where section.kind == .cpuid {
                updates.append(Update(type: .cpuid, gpa: UInt64(section.gpa), contents: nil))
            }
        }
        return updates
    }

    // MARK: - Shared

    /// The BSP page and the page every AP shares.
    private static func vmsaPages(
        _ inputs: LaunchInputs, apEIP: UInt32, guestFeatures: UInt64
    ) -> (bsp: [UInt8], ap: [UInt8]) {
        func page(_ eip: UInt32, isBSP: Bool) -> [UInt8] {
            VMSAPage.page(
                eip: eip, isBSP: isBSP, signature: inputs.vcpuSignature, guestFeatures: guestFeatures,
                vmmType: inputs.vmmType)
        }
        return (page(VMSAPage.bspEIP, isBSP: true), page(apEIP, isBSP: false))
    }

    /// SEV/SEV-ES: the padded table when a kernel is given; the firmware must declare a non-zero table GPA.
    private static func sevHashTable(_ inputs: LaunchInputs, image: OVMFImage) throws(MeasurementError) -> [UInt8]? {
        guard let kernel = inputs.kernel else { return nil }
        guard let gpa = image.hashTableGPA, gpa != 0 else { throw .kernelHashesUnsupported }
        return SEVHashTable.padded(kernel: kernel, initrd: inputs.initrd, cmdline: inputs.append)
    }
}
