import Glibc

@testable import Boot

/// A directory under /tmp removed (with its contents) when the value goes away.
final class TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/vhsm-boot-test-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw SystemError("mkdtemp", "/tmp") }
        path = String(cString: made)
    }

    deinit {
        _ = TreeRemoval().removeContents(of: path)
        rmdir(path)
    }

    /// Writes `text` to `name` (relative; parents are created).
    func write(_ text: String, to name: String) throws {
        let full = "\(path)/\(name)"
        if let slash = full.lastIndex(of: "/") { try Files.makeDirectories(String(full[..<slash])) }
        let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw SystemError("open", full) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw SystemError("write", full)
        }
    }

    func makeDirectory(_ name: String) throws {
        try Files.makeDirectories("\(path)/\(name)")
    }
}
