import CLinux
import Glibc
import Synchronization

/// Random bytes for keys, nonces and request IDs, from the kernel's CSPRNG (`getrandom(2)`).
///
/// Every request draws some: a request ID (16 bytes), a nonce per encrypted item (12 bytes). swift-crypto's
/// `SymmetricKey(size:)` and the standard library's generator make one `getrandom` call per 8 bytes, so a batch
/// of 100 encryptions cost 200 system calls. Small draws are therefore served from a 4 KiB pool filled by one
/// `getrandom` call; every byte handed out is wiped from the pool, so a byte is never given twice and none
/// lingers there after use. Draws larger than a quarter of the pool go to the kernel directly.
enum TransitRandom {
    static func bytes(_ count: Int) -> [UInt8] {
        guard count > 0 else { return [] }
        guard count <= RandomPool.capacity / 4 else {
            var out = [UInt8](repeating: 0, count: count)
            out.withUnsafeMutableBytes { RandomPool.fill($0) }
            return out
        }
        return pool.withLock { $0.take(count) }
    }

    private static let pool = Mutex(RandomPool())
}

private struct RandomPool: ~Copyable {
    static let capacity = 4096

    private var bytes = [UInt8](repeating: 0, count: capacity)
    private var next = capacity

    mutating func take(_ count: Int) -> [UInt8] {
        if next + count > Self.capacity {
            bytes.withUnsafeMutableBytes { Self.fill($0) }
            next = 0
        }
        let range = next..<(next + count)
        next += count
        return bytes.withUnsafeMutableBytes { buffer in
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[range])
            defer { explicit_bzero(slice.baseAddress!, count) }
            return Array(slice)
        }
    }

    /// Fills `buffer` from `getrandom(2)`, retrying on interruption and short reads. Without a working kernel
    /// CSPRNG there is no safe way on: the process stops, as the standard library's generator does.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var done = 0
        while done < buffer.count {
            let got = getrandom(buffer.baseAddress! + done, buffer.count - done, 0)
            if got > 0 {
                done += got
            } else if got < 0 && errno == EINTR {
                continue
            } else {
                fatalError("getrandom(2) failed (errno \(errno)): the kernel's random source is unavailable")
            }
        }
    }
}
