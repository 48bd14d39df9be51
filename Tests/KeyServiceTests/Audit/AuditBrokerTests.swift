import Foundation
import Testing

@testable import KeyService

@Suite("Audit broker")
struct AuditBrokerTests {
    let directory = TemporaryDirectory()

    @Test func sealAndHealthPathsAreNotAuditedButInitIs() throws {
        let broker = AuditBroker(devices: [try AuditDevice(filePath: directory.path + "/audit.log", salt: [1])])
        // sys/init issues the root token: it is audited (Vault does not).
        #expect(broker.audits("sys/init"))
        for path in ["sys/seal-status", "sys/seal", "sys/unseal", "sys/leader", "sys/health"] {
            #expect(!broker.audits(path), "\(path)")
        }
        #expect(broker.audits("transit/encrypt/k1"))
        #expect(broker.audits("sys/mounts"))
        #expect(!AuditBroker().audits("transit/encrypt/k1"))
    }

    @Test func devicesAreFoundByTheirAuditPath() throws {
        let device = try AuditDevice(name: "file", filePath: directory.path + "/audit.log", salt: [1])
        let broker = AuditBroker(devices: [device])
        #expect(broker.device(named: "file") === device)
        #expect(broker.device(named: "file/") === device)
        #expect(broker.device(named: "syslog") == nil)
        #expect(broker.listing["file/"]?["type"] == .string("file"))
        #expect(broker.listing["file/"]?["options"]?["file_path"] == .string(directory.path + "/audit.log"))
    }

    @Test func everyDeviceRecordsTheEntry() async throws {
        let first = try AuditDevice(name: "file", filePath: directory.path + "/a.log", salt: [1])
        let second = try AuditDevice(name: "backup", filePath: directory.path + "/b.log", salt: [2])
        let broker = AuditBroker(devices: [first, second])
        let entry = AuditRequest(id: "id", operation: "read", path: "transit/keys/k1")
        #expect(try await broker.logRequest(entry).isEmpty)
        #expect(try await broker.logResponse(entry, response: AuditResponse()).isEmpty)
        for name in ["a", "b"] {
            let text = try String(contentsOfFile: directory.path + "/\(name).log", encoding: .utf8)
            #expect(text.split(separator: "\n").count == 2)
        }
    }

    @Test func withoutDevicesNothingIsRecordedAndNothingFails() async throws {
        #expect(try await AuditBroker().logRequest(AuditRequest(id: "id", operation: "read", path: "x")).isEmpty)
    }

    @Test func theFailureOfEveryDeviceNamesEachFile() {
        let error = AuditError.noDeviceRecorded(failures: [
            .file(path: "/var/log/vhsmd/audit.log", operation: "append to", errno: 28)
        ])
        #expect(
            error.description
                == "no audit device could record the request, so it was refused: cannot append to "
                + "'/var/log/vhsmd/audit.log': No space left on device. Is the disk (or the user's quota) full?")
    }

    @Test func responsesFromVaultErrorsAndReplies() {
        #expect(AuditResponse(VaultError.permissionDenied).error == "permission denied")
        #expect(AuditResponse(VaultError.notFound).error == nil)
        #expect(AuditResponse(VaultReply.data(["a": .int(1)])).data == .object(["a": .int(1)]))
        #expect(AuditResponse(VaultReply(bare: .object(["b": .bool(true)]))).data == .object(["b": .bool(true)]))
    }
}
