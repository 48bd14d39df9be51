/// Why the barrier refused an operation. Cases about one stored value name its storage path.
enum BarrierError: Error, Equatable, CustomStringConvertible {
    /// The barrier has no keyring in memory yet (or was sealed again).
    case sealed(path: String)
    /// `unseal` found no keyring: the data directory was never initialized.
    case notInitialized
    /// `initialize` found a keyring already: it never overwrites one.
    case alreadyInitialized
    /// The root key does not authenticate the stored keyring.
    case wrongRootKey
    /// The keyring decrypted but its contents do not parse.
    case corruptKeyring(reason: String)
    /// The keyring's own path cannot be read or written through the barrier.
    case reservedPath(String)
    /// A stored value is shorter than the smallest barrier frame.
    case truncated(path: String, count: Int)
    /// A stored value names a key term the keyring does not hold.
    case unknownTerm(path: String, term: UInt32)
    /// A stored value fails AES-GCM authentication under its path and term.
    case tampered(path: String, term: UInt32)
    /// A stored value or path name of the store's own (the path key, a hidden path name) is malformed.
    case corrupt(path: String, reason: String)

    var description: String {
        switch self {
        case .sealed(let path):
            "cannot access '\(path)': the barrier is sealed. Unseal vhsmd (or finish sys/init) first"
        case .notInitialized:
            "there is no barrier keyring at '\(Barrier.keyringPath)': this data directory has not been initialized. "
                + "Run sys/init, or check that the right data directory is mounted"
        case .alreadyInitialized:
            "a barrier keyring already exists at '\(Barrier.keyringPath)': refusing to initialize over existing data"
        case .wrongRootKey:
            "the barrier root key does not open this data directory (the keyring at '\(Barrier.keyringPath)' "
                + "fails authentication): was it sealed to another chip, measurement or TCB?"
        case .corruptKeyring(let reason):
            "the barrier keyring at '\(Barrier.keyringPath)' opened but is malformed: \(reason). "
                + "Restore the data directory from a backup"
        case .reservedPath(let path):
            "'\(path)' holds the barrier keyring or its escrow and cannot be read or written through the barrier"
        case .truncated(let path, let count):
            "the stored value at '\(path)' is \(count) bytes, shorter than the \(BarrierFrame.overhead)-byte "
                + "barrier frame: it was truncated or written without the barrier"
        case .unknownTerm(let path, let term):
            "the stored value at '\(path)' is sealed under barrier term \(term), which the keyring does not hold: "
                + "was the keyring restored from an older backup than the data?"
        case .tampered(let path, let term):
            "the stored value at '\(path)' fails authentication under barrier term \(term): it was altered, "
                + "or copied from another path. Restore it from a backup"
        case .corrupt(let path, let reason):
            "the store's entry at '\(path)' is unusable: \(reason). Restore the database from a backup"
        }
    }
}
