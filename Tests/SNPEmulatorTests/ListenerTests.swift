import Foundation
import Glibc
import Testing

@testable import SNPEmulator

/// `vhsm emulator serve`'s socket: a second emulator never takes over a socket another one serves, a stale socket
/// is replaced, and a path holding anything else is never removed.
@Suite struct ListenerTests {
    static func path() -> String { NSTemporaryDirectory() + "vhsm-listener-\(UUID().uuidString.prefix(8)).sock" }

    @Test func aSocketAnotherEmulatorServesIsRefusedAndKeepsWorking() throws {
        let path = Self.path()
        let first = try Listener(path: path)
        #expect(throws: EmulatorError.socketInUse(path: path)) { _ = try Listener(path: path) }
        // The first listener's socket is still there and still accepts.
        let client = try StreamConnection.open(path)
        let accepted = try first.accept()
        close(accepted)
        _ = consume client
        #expect(EmulatorError.socketInUse(path: path).description.contains("another 'vhsm emulator serve'"))
    }

    @Test func aStaleSocketIsReplaced() throws {
        let path = Self.path()
        // A socket bound and closed without removal (an emulator killed with -9): nothing accepts on it.
        var address = try StreamConnection.address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0)
        close(fd)
        let listener = try Listener(path: path)
        let client = try StreamConnection.open(path)
        close(try listener.accept())
        _ = consume client
    }

    @Test func aPathHoldingAFileIsRefusedAndLeftAlone() throws {
        let path = Self.path()
        try Data("keep me".utf8).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        #expect(throws: EmulatorError.socketPathTaken(path: path)) { _ = try Listener(path: path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep me")
    }
}
