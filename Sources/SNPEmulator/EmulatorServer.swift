import FoundationEssentials
import Glibc

/// `vhsm emulator serve`: answers framed requests for one launched guest on a unix socket, each connection
/// on its own thread (QEMU keeps its connection for the VM's life; CLI clients come and go).
public final class EmulatorServer: Sendable {
    public let guest: EmulatedGuest
    public let socketPath: String

    public init(guest: EmulatedGuest, socketPath: String) {
        self.guest = guest
        self.socketPath = socketPath
    }

    /// Listens and serves until the process ends. `ready` runs once the socket accepts connections.
    public func run(ready: @Sendable () -> Void = {}) throws(EmulatorError) -> Never {
        let listener = try Listener(path: socketPath)
        ready()
        while true {
            let descriptor = try listener.accept()
            let guest = self.guest
            let path = socketPath
            try Self.detachThread(path: path) {
                let connection = StreamConnection.accepted(descriptor, path: path)
                Self.serve(connection, guest: guest)
            }
        }
    }

    /// Runs `body` on a new detached thread (a blocked connection must not hold up the others).
    private static func detachThread(path: String, _ body: @escaping @Sendable () -> Void) throws(EmulatorError) {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(
            &thread, nil,
            { argument in
                let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        guard status == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw .socket(path: path, operation: "start a thread for a connection on", errno: status)
        }
        pthread_detach(thread)
    }

    /// Serves frames until the peer closes (`WireProtocol.serve` on the connection's exact reads and full writes).
    static func serve(_ connection: borrowing StreamConnection, guest: EmulatedGuest) {
        WireProtocol.serve(
            read: { (count: Int) throws(EmulatorError) in try connection.read(exactly: count) },
            write: { (bytes: [UInt8]) throws(EmulatorError) in try connection.write(bytes) }, guest: guest)
    }
}
