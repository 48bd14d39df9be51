internal import Glibc
internal import SystemPackage

/// Plain reads and writes of a device or image file: sizes, the blank check, the one header read, and the
/// write-back of a changed header copy.
struct DeviceFile {
    let path: String

    private func open(_ mode: FileDescriptor.AccessMode) throws(VolumeError) -> FileDescriptor {
        do { return try FileDescriptor.open(FilePath(path), mode, options: [.closeOnExec]) } catch {
            throw .io(path: path, operation: "open", error as? Errno ?? .ioError)
        }
    }

    /// The size in bytes (regular files and block devices alike).
    func size() throws(VolumeError) -> Int64 {
        let fd = try open(.readOnly)
        defer { try? fd.close() }
        do { return try fd.seek(offset: 0, from: .end) } catch {
            throw .io(path: path, operation: "find the size of", error as? Errno ?? .ioError)
        }
    }

    /// Exactly `count` bytes at `offset`, in one read call when the kernel allows (short reads are continued).
    func read(offset: Int64, count: Int) throws(VolumeError) -> [UInt8] {
        let fd = try open(.readOnly)
        defer { try? fd.close() }
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let got: Int
            do {
                got = try bytes.withUnsafeMutableBytes { buffer in
                    try fd.read(
                        fromAbsoluteOffset: offset + Int64(done),
                        into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
                }
            } catch {
                throw .io(path: path, operation: "read", error as? Errno ?? .ioError)
            }
            guard got > 0 else { throw .io(path: path, operation: "read \(count) bytes at \(offset) of", .ioError) }
            done += got
        }
        return bytes
    }

    /// Writes `ranges` of `bytes` (offsets are device offsets) in the given order, each followed by fsync.
    func write(_ bytes: [UInt8], ranges: [Range<Int>]) throws(VolumeError) {
        let fd = try open(.readWrite)
        defer { try? fd.close() }
        for range in ranges {
            do {
                _ = try fd.writeAll(toAbsoluteOffset: Int64(range.lowerBound), bytes[range])
            } catch {
                throw .io(path: path, operation: "write the header to", error as? Errno ?? .ioError)
            }
            guard fsync(fd.rawValue) == 0 else {
                throw .io(path: path, operation: "flush the header to", Errno(rawValue: errno))
            }
        }
    }
}
