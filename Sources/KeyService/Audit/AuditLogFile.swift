import FoundationEssentials
import Glibc

/// The append-only file under an audit device: mode 0600, opened `O_APPEND`, each line written whole and
/// `fdatasync`'d before `append` returns, so an acknowledged request's lines survive a crash. Not thread-safe:
/// `AuditDevice` owns it behind a lock.
final class AuditLogFile {
    let path: String
    private let descriptor: Int32

    /// Opens (creating 0600 if absent) the file for appending; its directory must exist.
    init(path: String) throws(AuditError) {
        self.path = path
        let directory = Self.directory(of: path)
        let type = (try? FileManager.default.attributesOfItem(atPath: directory))?[.type] as? FileAttributeType
        guard type == .typeDirectory else {
            throw .missingDirectory(file: path, directory: directory)
        }
        var created = true
        var descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        if descriptor < 0, errno == EEXIST {
            created = false
            descriptor = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW)
        }
        guard descriptor >= 0 else { throw .file(path: path, operation: "open for appending", errno: errno) }
        self.descriptor = descriptor
        // An existing log may have been created by hand with a wider mode: audit lines are not for everyone.
        guard fchmod(descriptor, 0o600) == 0 else { throw .file(path: path, operation: "chmod 0600", errno: errno) }
        if created { try Self.syncDirectory(of: path) }
    }

    /// Appends to `descriptor`, already open for writing (it is closed with the file): tests give a device whose
    /// writes fail, such as /dev/full.
    init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Appends one line and waits until it is on disk. A failed write or sync leaves no line behind (the file is cut
    /// back to its previous length), so the next line still starts on a line of its own and a refused request is
    /// not in the log.
    func append(_ bytes: [UInt8]) throws(AuditError) {
        // The length before this line (lseek to the end; the file is opened O_APPEND), to cut a failed write back.
        let length = lseek(descriptor, 0, SEEK_END)
        guard length >= 0 else { throw .file(path: path, operation: "seek", errno: errno) }
        if let code = Self.writeAll(bytes, to: descriptor) {
            _ = ftruncate(descriptor, length)
            throw .file(path: path, operation: "append to", errno: code)
        }
        // A failed sync may have lost the pages just written while the cache still shows them (Linux marks them
        // clean): cut the lines off, so the next append writes that range again instead of trusting it.
        guard fdatasync(descriptor) == 0 else {
            let code = errno
            _ = ftruncate(descriptor, length)
            throw .file(path: path, operation: "fsync", errno: code)
        }
    }

    /// Writes all of `bytes`, retrying short writes and `EINTR`; returns the errno of a failure.
    static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return nil
    }

    /// The directory part of `path` (`.` for a bare file name, `/` for a file at the root).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Makes a new directory entry under `path`'s directory durable.
    static func syncDirectory(of path: String) throws(AuditError) {
        let directory = directory(of: path)
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .file(path: directory, operation: "open directory", errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .file(path: directory, operation: "fsync directory", errno: errno) }
    }
}
