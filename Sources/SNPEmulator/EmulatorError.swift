public import SNP

/// What went wrong in the software Secure Processor or its transport.
public enum EmulatorError: Error, Equatable, Sendable, CustomStringConvertible {
    case stateMissing(path: String)
    case stateExists(path: String)
    case stateUnreadable(path: String, detail: String)
    case stateUnwritable(path: String, detail: String)
    case launchRefused(FirmwareStatus, reason: String)
    case socket(path: String, operation: String, errno: Int32)
    /// Another emulator accepts connections on the socket.
    case socketInUse(path: String)
    /// The socket's path holds something that is not a socket.
    case socketPathTaken(path: String)
    case protocolViolation(String)
    case serverError(String)
    case certificateBufferTooLarge(required: Int)
    /// TCBs a firmware cannot hold together (CURRENT_TCB below COMMITTED_TCB or REPORTED_TCB).
    case tcbOrder(String)

    public var description: String {
        switch self {
        case .stateMissing(let path):
            "no emulator state at '\(path)'; create one with 'vhsm emulator init --state \(path) --product milan'"
        case .stateExists(let path):
            "'\(path)' already holds an emulated chip; pick another --state directory (a chip is never overwritten)"
        case .stateUnreadable(let path, let detail): "cannot read emulator state '\(path)': \(detail)"
        case .stateUnwritable(let path, let detail): "cannot write emulator state '\(path)': \(detail)"
        case .launchRefused(let status, let reason):
            "the emulated firmware refused the launch with \(status): \(reason)"
        case .socket(let path, let operation, let errno):
            "\(operation) '\(path)' failed: \(errnoDescription(errno))"
                + (operation == "connect to" ? "; is 'vhsm emulator serve' running on it?" : "")
        case .socketInUse(let path):
            "'\(path)' is in use: another 'vhsm emulator serve' accepts connections on it; stop that one (its "
                + "socket goes with it) or pick another --socket"
        case .socketPathTaken(let path):
            "'\(path)' exists and is not a unix socket; it is left as it is: remove it or pick another --socket"
        case .protocolViolation(let detail): "the emulator link broke protocol: \(detail)"
        case .serverError(let detail): "the emulator answered with an error: \(detail)"
        case .certificateBufferTooLarge(let required):
            "the emulator needs a \(required)-byte certificate buffer, above the kernel's 16 KiB limit"
        case .tcbOrder(let detail): "the emulated chip's TCBs are inconsistent: \(detail)"
        }
    }
}
