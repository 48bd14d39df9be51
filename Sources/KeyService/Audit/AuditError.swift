import Glibc

/// Why an audit device could not be opened or could not record an entry. Every case names the file involved;
/// the request that was being audited is refused (Vault fails a request no enabled device can record).
enum AuditError: Error, Equatable, CustomStringConvertible {
    /// The directory that should hold the log does not exist (or is not a directory).
    case missingDirectory(file: String, directory: String)
    /// The log or its salt file could not be opened, created, read, written, synced or renamed.
    case file(path: String, operation: String, errno: Int32)
    /// The salt file exists but does not hold exactly 32 bytes.
    case saltLength(path: String, count: Int)
    /// Every enabled device failed to record the entry.
    case noDeviceRecorded(failures: [AuditError])

    var description: String {
        switch self {
        case .missingDirectory(let file, let directory):
            "cannot open the audit log '\(file)': the directory '\(directory)' does not exist or is not a "
                + "directory. Create it (writable by vhsmd's user) or point the audit device at an existing one."
        case .file(let path, let operation, let errno):
            "cannot \(operation) '\(path)': \(String(cString: strerror(errno))). "
                + Self.hint(errno)
        case .saltLength(let path, let count):
            "the audit salt '\(path)' holds \(count) bytes where 32 are expected: restore it from a backup "
                + "(the hashes already in the log were made with it), or move it aside to start a new salt."
        case .noDeviceRecorded(let failures):
            "no audit device could record the request, so it was refused: "
                + failures.map(\.description).joined(separator: "; ")
        }
    }

    /// What the client of a refused request is told: that no audit device could record it, and why each failed
    /// (the system's reason and the hint, without the log's path).
    var clientMessage: String {
        switch self {
        case .noDeviceRecorded(let failures):
            "the request was refused because no audit device could record it ("
                + failures.map(\.reason).joined(separator: "; ") + ")"
        default:
            "the request was refused because the audit device could not record it (\(reason))"
        }
    }

    /// One device's failure in a few words: `cannot append to the audit log: No space left on device. Is the disk …`.
    private var reason: String {
        switch self {
        case .file(_, let operation, let errno):
            "cannot \(operation) the audit log: \(String(cString: strerror(errno))). \(Self.hint(errno))"
        case .missingDirectory: "the audit log's directory is missing"
        case .saltLength: "the audit salt is damaged"
        case .noDeviceRecorded(let failures): failures.map(\.reason).joined(separator: "; ")
        }
    }

    private static func hint(_ errno: Int32) -> String {
        switch errno {
        case ENOSPC, EDQUOT: "Is the disk (or the user's quota) full?"
        case EROFS: "Is the volume mounted read-only?"
        case EACCES, EPERM: "Is the file (and its directory) writable by vhsmd's user?"
        case EIO: "The storage reported an I/O error: check the disk and the kernel log."
        default: "Is the volume holding the audit log mounted and writable?"
        }
    }
}
