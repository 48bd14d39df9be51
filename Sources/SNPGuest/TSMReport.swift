import Glibc
public import SNP
public import SystemPackage

/// Attestation reports through configfs-tsm (Linux 6.7, `CONFIG_TSM_REPORTS`), the kernel's
/// vendor-neutral report interface. Each request makes a private entry under `root`, fills it, reads the
/// report and removes the entry again.
///
/// The kernel checks the firmware STATUS itself (0x16 and 0x27 become EINVAL, anything else ENXIO), so a refusal
/// arrives as `TSMError.reportRefused`, not as a response with a STATUS. configfs-tsm offers no derived keys.
public struct TSMReportDevice: GuestDevice {
    public var root: FilePath

    public init(root: FilePath = "/sys/kernel/config/tsm/report") {
        self.root = root
    }

    public var name: String { "configfs-tsm" }

    public func report(_ request: ReportRequest) throws(TSMError) -> ReportResponse {
        try withEntry { entry throws(TSMError) in
            try entry.generate(request, certificates: false).report
        }
    }

    public func extendedReport(
        _ request: ReportRequest
    ) throws(TSMError) -> (
        ReportResponse, CertificateTable
    ) {
        try withEntry { entry throws(TSMError) in
            let result = try entry.generate(request, certificates: true)
            return (result.report, result.certificates ?? CertificateTable(entries: []))
        }
    }

    /// Always throws `TSMError.derivedKeysUnsupported`.
    public func derivedKey(_ request: DerivedKeyRequest) throws(TSMError) -> DerivedKeyResponse {
        throw .derivedKeysUnsupported
    }

    /// Runs `body` on a freshly made entry directory and removes the entry afterwards, whatever happened.
    private func withEntry<T>(_ body: (TSMEntry) throws(TSMError) -> T) throws(TSMError) -> T {
        let directory = try makeEntry()
        defer { _ = directory.withPlatformString { rmdir($0) } }
        return try body(TSMEntry(directory: directory))
    }

    /// mkdir under `root` with a name no other requester uses, so no one else writes to our entry.
    private func makeEntry() throws(TSMError) -> FilePath {
        var attempts = 0
        while true {
            let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
            let directory = root.appending("vhsm-\(getpid())-\(suffix)")
            guard directory.withPlatformString({ mkdir($0, 0o700) }) != 0 else { return directory }
            let errno = Errno(rawValue: Glibc.errno)
            attempts += 1
            switch errno {
            case .fileExists where attempts < 8: continue
            case .noSuchFileOrDirectory, .notDirectory: throw .unavailable(root: root.string)
            default: throw .cannotCreateEntry(path: directory.string, errno)
            }
        }
    }
}

/// One configfs-tsm entry directory that already exists: the attribute reads and writes of one request.
/// Separate from `TSMReportDevice` so that tests can run it on a plain directory.
struct TSMEntry {
    /// The provider the SEV-SNP guest driver registers.
    static let sevGuestProvider = "sev_guest\n"

    var directory: FilePath
    /// Called after each attribute has been read; tests use it to play another writer.
    var afterRead: (_ attribute: String) -> Void = { _ in }

    /// Checks the provider, writes inblob (and privlevel), reads outblob (and auxblob) and checks that
    /// `generation` did not move while reading.
    func generate(
        _ request: ReportRequest, certificates: Bool
    ) throws(TSMError)
        -> (report: ReportResponse, certificates: CertificateTable?)
    {
        let provider = try read("provider")
        guard provider == Array(Self.sevGuestProvider.utf8) else {
            throw .wrongProvider(path: path("provider"), found: String(decoding: provider, as: UTF8.self))
        }
        guard request.reportData.count == 64 else {
            throw .badReportData(path: path("inblob"), count: request.reportData.count)
        }
        // configfs-tsm has no attribute for KEY_SEL: refuse rather than silently use the default key.
        guard request.keySelect == 0 else {
            throw .keySelectUnsupported(path: directory.string, keySelect: request.keySelect)
        }
        try write("inblob", request.reportData)
        if request.vmpl != 0 {
            try write("privlevel", Array("\(request.vmpl)\n".utf8))
        }
        let before = try generation()
        let outblob = try read("outblob")
        let auxblob = certificates ? try read("auxblob") : nil
        let after = try generation()
        guard before == after else {
            throw .generationChanged(path: path("generation"), before: before, after: after)
        }

        guard outblob.count == AttestationReport.byteCount else {
            throw .unexpectedReportSize(path: path("outblob"), count: outblob.count)
        }
        let report: AttestationReport
        do {
            report = try AttestationReport(bytes: outblob)
        } catch {
            throw .malformedReport(path: path("outblob"), error)
        }
        let response = ReportResponse(status: .success, report: report)
        guard let auxblob else { return (response, nil) }
        guard auxblob.contains(where: { $0 != 0 }) else {
            return (response, CertificateTable(entries: []))
        }
        do {
            return (response, try CertificateTable(bytes: auxblob))
        } catch {
            throw .malformedCertificates(path: path("auxblob"), error)
        }
    }

    private func path(_ attribute: String) -> String { directory.appending(attribute).string }

    private func generation() throws(TSMError) -> UInt64 {
        let text = String(decoding: try read("generation"), as: UTF8.self)
        let trimmed = text.filter { !$0.isWhitespace }
        guard let value = UInt64(trimmed) else {
            throw .invalidGeneration(path: path("generation"), text: text)
        }
        return value
    }

    /// The whole attribute. Reading outblob is what makes the kernel ask the firmware for the report.
    private func read(_ attribute: String) throws(TSMError) -> [UInt8] {
        let file = directory.appending(attribute)
        var contents: [UInt8] = []
        do {
            let descriptor = try FileDescriptor.open(file, .readOnly, options: [.closeOnExec])
            defer { try? descriptor.close() }
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = try chunk.withUnsafeMutableBytes { try descriptor.read(into: $0) }
                if count == 0 { break }
                contents += chunk[..<count]
            }
        } catch {
            let errno = error as? Errno ?? .ioError
            if attribute == "outblob" || attribute == "auxblob",
                errno == .invalidArgument || errno == .noSuchAddressOrDevice
            {
                throw .reportRefused(path: file.string, errno)
            }
            throw .readFailed(path: file.string, errno)
        }
        afterRead(attribute)
        return contents
    }

    /// Replaces the attribute's contents. configfs applies a binary attribute (inblob) when the file is closed.
    private func write(_ attribute: String, _ bytes: [UInt8]) throws(TSMError) {
        let file = directory.appending(attribute)
        do {
            let descriptor = try FileDescriptor.open(
                file, .writeOnly, options: [.truncate, .closeOnExec])
            try descriptor.closeAfter { _ = try descriptor.writeAll(bytes) }
        } catch {
            throw .writeFailed(path: file.string, error as? Errno ?? .ioError)
        }
    }
}

/// Why a configfs-tsm report failed. Each case names the file or directory involved.
public enum TSMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The report root does not exist.
    case unavailable(root: String)
    /// mkdir of the private entry failed for another reason.
    case cannotCreateEntry(path: String, Errno)
    /// The entry's `provider` is not `sev_guest`.
    case wrongProvider(path: String, found: String)
    /// REPORT_DATA is not 64 bytes; sev_guest takes exactly 64.
    case badReportData(path: String, count: Int)
    /// The request asks for a KEY_SEL, which configfs-tsm cannot pass on.
    case keySelectUnsupported(path: String, keySelect: UInt32)
    case readFailed(path: String, Errno)
    case writeFailed(path: String, Errno)
    /// Reading outblob or auxblob failed with EINVAL (firmware INVALID_PARAM or INVALID_KEY) or ENXIO (another
    /// firmware status).
    case reportRefused(path: String, Errno)
    /// `generation` moved while the report was read: someone else wrote to the entry.
    case generationChanged(path: String, before: UInt64, after: UInt64)
    case invalidGeneration(path: String, text: String)
    /// outblob is not a 1184-byte report.
    case unexpectedReportSize(path: String, count: Int)
    case malformedReport(path: String, LayoutError)
    case malformedCertificates(path: String, LayoutError)
    /// configfs-tsm has no MSG_KEY_REQ.
    case derivedKeysUnsupported

    public var description: String {
        switch self {
        case .unavailable(let root):
            "configfs-tsm is not available at '\(root)': is configfs mounted at /sys/kernel/config "
                + "and the kernel ≥ 6.7 with CONFIG_TSM_REPORTS?"
        case .cannotCreateEntry(let path, let errno):
            "cannot create the configfs-tsm entry '\(path)': \(errno); run as root and check that configfs is "
                + "mounted read-write"
        case .wrongProvider(let path, let found):
            "'\(path)' names the provider '\(found.filter { $0 != "\n" })', not 'sev_guest'; "
                + "this guest is not SEV-SNP or its sev-guest driver is not loaded"
        case .badReportData(let path, let count):
            "REPORT_DATA for '\(path)' must be 64 bytes, got \(count); pad or hash the nonce to 64 bytes"
        case .keySelectUnsupported(let path, let keySelect):
            "'\(path)' cannot pass KEY_SEL \(keySelect) to the firmware (configfs-tsm has no such attribute); "
                + "use KEY_SEL 0 or /dev/sev-guest"
        case .readFailed(let path, let errno):
            switch errno {
            case .resourceBusy, .wouldBlock:
                "cannot read '\(path)': \(errno); another writer changed the entry while it was read, retry"
            default:
                "cannot read '\(path)': \(errno); check that the entry is a configfs-tsm report entry"
            }
        case .writeFailed(let path, let errno):
            if path.hasSuffix("/privlevel") {
                "cannot write '\(path)': \(errno); the VMPL must be at least privlevel_floor and at most 3"
            } else {
                "cannot write '\(path)': \(errno); check that the entry is a configfs-tsm report entry"
            }
        case .reportRefused(let path, let errno):
            if errno == .invalidArgument {
                "reading '\(path)' failed: \(errno); the firmware refused the request (INVALID_PARAM or INVALID_KEY) "
                    + "or inblob was not 64 bytes, so check the VMPL and the kernel log"
            } else {
                "reading '\(path)' failed: \(errno); the firmware or host failed the report request, "
                    + "check the kernel log for sev-guest messages"
            }
        case .generationChanged(let path, let before, let after):
            "'\(path)' moved from \(before) to \(after) while the report was read: "
                + "another process wrote to this entry, so the report may not carry our REPORT_DATA; retry"
        case .invalidGeneration(let path, let text):
            "'\(path)' holds '\(text.filter { $0 != "\n" })', not a number; check that this is a configfs-tsm entry"
        case .unexpectedReportSize(let path, let count):
            "'\(path)' holds \(count) bytes, not a 1184-byte SEV-SNP report; check the provider and the kernel version"
        case .malformedReport(let path, let error):
            "the report in '\(path)' does not parse: \(error)"
        case .malformedCertificates(let path, let error):
            "the certificate table in '\(path)' does not parse: \(error); the host serves a malformed table"
        case .derivedKeysUnsupported:
            "configfs-tsm provides no derived keys (MSG_KEY_REQ); use /dev/sev-guest"
        }
    }
}
