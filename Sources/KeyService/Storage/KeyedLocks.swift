import NIOConcurrencyHelpers

/// Locks by storage path, as Vault's `locksutil`: a read-modify-write of one path (a KV v2 secret's versions, its
/// check-and-set) runs alone, while writes to other paths run at the same time (a database then commits them
/// together). Paths share one of `stripes` locks by hash, so memory stays fixed however many paths there are.
///
/// The locks block their thread: they are held across storage calls, which block too.
final class KeyedLocks: Sendable {
    private let stripes: [NIOLock]

    init(stripes: Int = 64) {
        self.stripes = (0..<max(stripes, 1)).map { _ in NIOLock() }
    }

    /// Runs `body` holding the lock of `key`'s stripe.
    func withLock<Result, Failure: Error>(
        _ key: String, _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let lock = stripes[stripe(of: key)]
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// The stripe of `key`: FNV-1a over its UTF-8 bytes (stable from run to run, unlike `Hasher`).
    func stripe(of key: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(stripes.count))
    }
}
