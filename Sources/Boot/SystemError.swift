import Glibc

/// A failed system call: what was called on what, and the errno.
struct SystemError: Error, Equatable, CustomStringConvertible {
    var call: String
    var subject: String
    var errno: Int32

    init(_ call: String, _ subject: String, errno: Int32 = Glibc.errno) {
        self.call = call
        self.subject = subject
        self.errno = errno
    }

    /// `No such device (ENODEV)`.
    var reason: String { Self.describe(errno) }

    var description: String { "\(call) \(subject): \(reason)" }

    static func describe(_ errno: Int32) -> String {
        let text = String(cString: strerror(errno))
        return names[errno].map { "\(text) (\($0))" } ?? "\(text) (errno \(errno))"
    }

    private static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EIO: "EIO", ENXIO: "ENXIO", EBADF: "EBADF",
        EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES", EBUSY: "EBUSY", EEXIST: "EEXIST", ENODEV: "ENODEV",
        ENOTDIR: "ENOTDIR", EISDIR: "EISDIR", EINVAL: "EINVAL", ENOSPC: "ENOSPC", EROFS: "EROFS",
        ENOTTY: "ENOTTY", ENOSYS: "ENOSYS", ENOTBLK: "ENOTBLK", ENOEXEC: "ENOEXEC", ENOKEY: "ENOKEY",
        EKEYREJECTED: "EKEYREJECTED", ENOPKG: "ENOPKG", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENETUNREACH: "ENETUNREACH",
        ETIMEDOUT: "ETIMEDOUT", ENOTEMPTY: "ENOTEMPTY", EXDEV: "EXDEV", ENAMETOOLONG: "ENAMETOOLONG",
    ]
}
