import Foundation
import SNP

/// Reading files and typed option values, with errors that name the file or the option.
enum Inputs {
    /// The largest firmware, kernel or initrd `vhsm` measures.
    static let measuredLimit = 4 << 30

    /// Reads a whole file. `limit` guards against feeding a disk image where a report or certificate belongs;
    /// files that a launch measures (firmware, kernel, initrd) use `measuredLimit`.
    static func read(_ path: String, limit: Int = 16 << 20) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw CLIError.input(path, "no such file")
        }
        guard !isDirectory.boolValue else { throw CLIError.input(path, "is a directory, expected a file") }
        // Through a file handle, so that pipes (`--chain <(cat ask.pem ark.pem)`) work too.
        guard let handle = FileHandle(forReadingAtPath: path), let data = try? handle.readToEnd() ?? Data() else {
            throw CLIError.input(path, "cannot be read (permissions?)")
        }
        try? handle.close()
        guard data.count <= limit else {
            throw CLIError.input(path, "is larger than \(limit >> 20) MiB, more than this input can be")
        }
        return Array(data)
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        do { try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw CLIError(exitCode: 1, description: "\(path): cannot write: \(error.localizedDescription)")
        }
    }

    static func report(_ path: String) throws -> AttestationReport {
        let bytes = try read(path)
        guard bytes.count == AttestationReport.byteCount else {
            throw CLIError.input(
                path,
                "is \(bytes.count) bytes; an ATTESTATION_REPORT is exactly 1184 (0x4A0) bytes. "
                    + "Is it a raw report (not hex, base64 or a whole MSG_REPORT_RSP)?")
        }
        do { return try AttestationReport(bytes: bytes) } catch {
            throw CLIError.refused("\(path): not a valid ATTESTATION_REPORT: \(error)")
        }
    }

    /// AMD's pinned roots, plus the ARK in `trustingEmulatorRoot` (PEM) when given: the verifier and the extra root
    /// to offer as a chain candidate.
    static func verifier(trustingEmulatorRoot path: String?) throws -> (ReportVerifier, [AMDCertificate]) {
        guard let path else { return (.amd, []) }
        let root = try certificate(path)
        return (ReportVerifier.amd.trusting(root), [root])
    }

    static func certificate(_ path: String) throws -> AMDCertificate {
        do { return try AMDCertificate(bytes: try read(path)) } catch let error as CertificateError {
            throw CLIError.input(path, error.description)
        } catch {
            throw CLIError.input(path, "\(error)")
        }
    }

    /// The VCEK or VLEK given with `--cert`. A file holding AMD's CA certificates instead (the ASK or ASVK, the ARK:
    /// a KDS `cert_chain`), or more than one certificate, is refused with what to pass where.
    static func endorsement(_ path: String) throws -> AMDCertificate {
        let all = try certificates(pem: path)
        let authorities = all.filter { isAuthority($0.subject.commonName) }
        if !authorities.isEmpty || all.count > 1 {
            let names = all.map(\.subject.description).joined(separator: ", ")
            throw CLIError.usage(
                "--cert \(path) holds "
                    + (authorities.isEmpty
                        ? "\(all.count) certificates (\(names)); --cert takes one, the VCEK or VLEK"
                        : "AMD's certificate chain (\(names)), the ASK or ASVK and the ARK, not a VCEK or VLEK: pass "
                            + "it with --chain, and the VCEK or VLEK with --cert"))
        }
        return all[0]
    }

    /// AMD's CA names: the ARK (`ARK-Genoa`), the ASK (`SEV-Genoa`) and the ASVK (`SEV-VLEK-Genoa`); the leaves are
    /// `SEV-VCEK` and `SEV-VLEK`.
    static func isAuthority(_ commonName: String?) -> Bool {
        guard let commonName else { return false }
        return commonName.hasPrefix("ARK-")
            || (commonName.hasPrefix("SEV-") && commonName != "SEV-VCEK" && commonName != "SEV-VLEK")
    }

    static func certificates(pem path: String) throws -> [AMDCertificate] {
        let bytes = try read(path)
        do {
            if bytes.starts(with: Array("-----BEGIN".utf8)) {
                return try AMDCertificate.all(pemEncoded: String(decoding: bytes, as: UTF8.self))
            }
            return [try AMDCertificate(derEncoded: bytes)]
        } catch {
            throw CLIError.input(path, error.description)
        }
    }

    /// Hex of exactly `count` bytes.
    static func hex(_ text: String, option: String, count: Int) throws -> [UInt8] {
        do { return try Hex.decode(text, count: count) } catch { throw CLIError.usage("\(option) \(error)") }
    }

    /// Hex of 1 to `count` bytes, zero-padded on the right to `count` (REPORT_DATA conventions).
    static func paddedHex(_ text: String, option: String, count: Int) throws -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try Hex.decode(text) } catch { throw CLIError.usage("\(option) \(error)") }
        guard bytes.count <= count else {
            throw CLIError.usage(
                "\(option) must be at most \(count) bytes (\(count * 2) hex digits), got \(bytes.count) bytes")
        }
        return bytes + Array(repeating: 0, count: count - bytes.count)
    }

    static func tcb(_ text: String, option: String) throws -> TCBVersion {
        do { return try TCBVersion(hex: text) } catch {
            throw CLIError.usage(
                "\(option) \(error); give the 8 TCB_VERSION bytes in report order, e.g. 0300000000000873")
        }
    }

    static func policy(_ text: String) throws -> GuestPolicy {
        var digits = Substring(text)
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { digits = digits.dropFirst(2) }
        guard let value = UInt64(digits, radix: 16) else {
            throw CLIError.usage("--policy '\(text)' is not a hexadecimal 64-bit value (e.g. 0x30000)")
        }
        return GuestPolicy(rawValue: value)
    }

    static func instant(_ text: String) throws -> Date {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        throw CLIError.usage("--at '\(text)' is not an RFC 3339 time such as 2025-01-31T12:00:00Z")
    }
}
