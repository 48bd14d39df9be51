public import Sealing
public import SystemPackage

/// Every failure of the Volume library. Each description is one sentence that names the device, says what was
/// found, and ends with what to check next; none contains key material.
public enum VolumeError: Error, Equatable, CustomStringConvertible {
    /// The device or image could not be opened, read or written.
    case io(path: String, operation: String, Errno)
    /// Smaller than vhsm's header area plus a minimal data area.
    case tooSmall(path: String, size: Int64, minimum: Int64)
    /// `format` refuses anything that is not blank.
    case notBlank(path: String, found: String)
    /// No LUKS2 header where one was expected.
    case notLUKS2(path: String, found: String)
    /// A binary header's checksum does not match its bytes.
    case checksumMismatch(path: String, header: String)
    /// The header parses but is not exactly what vhsm writes.
    case headerRejected(path: String, field: String, found: String, expected: String)
    /// The `vhsm-snp` token's MAC does not verify with the key derived on this machine.
    case tokenMACMismatch(path: String)
    /// The keys were derived for another seal mode than the token records.
    case sealModeMismatch(path: String, token: SealMode, keys: SealMode)
    /// The keys were derived for another volume UUID.
    case volumeMismatch(path: String, header: String, keys: String)
    /// The passphrase opens no keyslot (or not the one the token names).
    case wrongKey(path: String, keyslot: Int?)
    /// A caller-supplied value is unusable (UUID, binding fields, recovery recipient).
    case invalidArgument(String)
    /// No recovery token / the recovery blob or key cannot be used.
    case recovery(path: String, String)
    /// The data does not match the dm-verity root hash (the userspace check); `detail` is libcryptsetup's line.
    case verityMismatch(path: String, detail: String)
    /// libcryptsetup refused; `log` holds its last error messages.
    case cryptsetup(path: String, operation: String, Errno, log: [String])

    public var description: String {
        switch self {
        case .io(let path, let operation, let errno):
            return "cannot \(operation) \(path): \(errno). Check that the device exists and is readable by this user."
        case .tooSmall(let path, let size, let minimum):
            return "\(path) is \(size) bytes; vhsm needs at least \(minimum) bytes (2 MiB header area + data)."
        case .notBlank(let path, let found):
            return
                "\(path) is not blank (\(found)); refusing to format it. vhsm only formats volumes whose first and "
                + "last MiB are zero: wipe it deliberately if it really is to be reused."
        case .notLUKS2(let path, let found):
            return "\(path) has no LUKS2 header (\(found)). Is this the volume vhsm formatted?"
        case .checksumMismatch(let path, let header):
            return
                "the LUKS2 \(header) header of \(path) does not match its SHA-256 checksum: the header was changed "
                + "outside vhsm or is damaged; refusing to use it. Restore it from a backup or recover the volume."
        case .headerRejected(let path, let field, let found, let expected):
            return
                "the LUKS2 header of \(path) has \(field) \(found) (expected \(expected)): the header was changed "
                + "outside vhsm; refusing to use it."
        case .tokenMACMismatch(let path):
            return
                "the vhsm-snp token MAC of \(path) does not verify with the key derived on this machine: either the "
                + "header was changed outside vhsm, or this VM derives another sealing key (other measurement, chip "
                + "or TCB). Compare the expected and actual values printed above; refusing to unlock."
        case .sealModeMismatch(let path, let token, let keys):
            return
                "\(path) was enrolled with seal mode '\(token.rawValue)' but the key was derived for "
                + "'\(keys.rawValue)'. Check vhsm.seal-mode in the configuration."
        case .volumeMismatch(let path, let header, let keys):
            return "\(path) has UUID \(header) but the keys were derived for \(keys); derive them for this volume."
        case .wrongKey(let path, let keyslot):
            let slot = keyslot.map { "keyslot \($0)" } ?? "any keyslot"
            return "the key opens no LUKS2 keyslot on \(path) (\(slot)). Was the volume enrolled on this machine?"
        case .invalidArgument(let text):
            return text
        case .recovery(let path, let text):
            return "recovery of \(path): \(text)"
        case .verityMismatch(let path, let detail):
            return
                "the data or hash tree of \(path) does not match the dm-verity root hash (\(detail)): the image was "
                + "changed after veritysetup format, or the parameters are not the ones it printed."
        case .cryptsetup(let path, let operation, let errno, let log):
            var text = "libcryptsetup could not \(operation) \(path): \(errno)"
            if let last = log.last { text += " (\(last))" }
            if log.contains(where: { $0.contains("device-mapper") }) {
                text += ". Device-mapper is not available here: activation and dm-integrity need the guest kernel."
            } else {
                text += "."
            }
            return text
        }
    }
}
