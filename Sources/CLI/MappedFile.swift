import Crypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A read-only memory mapping of a whole file: the one place the CLI calls mmap. Large inputs (kernels,
/// initrds) are hashed straight from the page cache instead of being read and copied.
struct MappedFile: ~Copyable {
    let path: String
    private let address: UnsafeMutableRawPointer?
    let count: Int

    init(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw CLIError.input(path, errno == ENOENT ? "no such file" : String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw CLIError.input(path, "is not a regular file")
        }
        let count = Int(info.st_size)
        var address: UnsafeMutableRawPointer?
        if count > 0 {
            let mapped = mmap(nil, count, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0)
            guard let mapped, mapped != MAP_FAILED else {
                throw CLIError.input(path, "cannot be mapped: \(String(cString: strerror(errno)))")
            }
            address = mapped
        }
        self.path = path
        self.count = count
        self.address = address
    }

    deinit {
        if let address { munmap(address, count) }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: address, count: count))
    }

    /// The file's bytes, copied out of the mapping.
    var bytes: [UInt8] { withBytes { Array($0) } }

    /// SHA-256 of the whole file.
    var sha256: [UInt8] {
        withBytes { buffer in
            var hasher = SHA256()
            hasher.update(bufferPointer: buffer)
            return Array(hasher.finalize())
        }
    }

    /// Maps `path` and hashes it; for files measured only through their digest.
    static func sha256(of path: String) throws -> [UInt8] { try MappedFile(path).sha256 }
}
