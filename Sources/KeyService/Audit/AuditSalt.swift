import Crypto
import Glibc

/// The per-device HMAC key: 32 random bytes kept beside the log as `<file>.salt` (mode 0600), made on first use.
/// The same salt must survive restarts so that hashes in old lines can still be recomputed with `sys/audit-hash`.
enum AuditSalt {
    static let size = 32

    /// Reads the salt at `path`, or creates it (written to a temporary file, synced, renamed into place).
    static func loadOrCreate(at path: String) throws(AuditError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        if descriptor >= 0 {
            defer { close(descriptor) }
            return try read(descriptor, path: path)
        }
        guard errno == ENOENT else { throw .file(path: path, operation: "open the audit salt", errno: errno) }
        let salt = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        try create(salt, at: path)
        return salt
    }

    private static func read(_ descriptor: Int32, path: String) throws(AuditError) -> [UInt8] {
        var salt: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: size + 1)
        while salt.count <= size {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .file(path: path, operation: "read the audit salt", errno: errno)
            }
            if count == 0 { break }
            salt += buffer[..<count]
        }
        guard salt.count == size else { throw .saltLength(path: path, count: salt.count) }
        return salt
    }

    private static func create(_ salt: [UInt8], at path: String) throws(AuditError) {
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { throw .file(path: temporary, operation: "create the audit salt", errno: errno) }
        var failure: (operation: String, errno: Int32)?
        if fchmod(descriptor, 0o600) != 0 {
            failure = ("chmod 0600", errno)
        } else if let code = AuditLogFile.writeAll(salt, to: descriptor) {
            failure = ("write the audit salt", code)
        } else if fsync(descriptor) != 0 {
            failure = ("fsync the audit salt", errno)
        }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw .file(path: temporary, operation: failure.operation, errno: failure.errno)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw .file(path: path, operation: "rename '\(temporary)' to", errno: code)
        }
        try AuditLogFile.syncDirectory(of: path)
    }
}
