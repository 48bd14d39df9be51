import Crypto
import Foundation
import Testing

@testable import KeyService

@Suite("Audit file device")
struct AuditDeviceTests {
    static let salt = Array(UInt8(1)...UInt8(32))

    let directory = TemporaryDirectory()
    var logPath: String { directory.path + "/audit.log" }

    func device(salt: [UInt8]? = AuditDeviceTests.salt) throws -> AuditDevice {
        try AuditDevice(filePath: logPath, salt: salt)
    }

    func contents() -> String {
        String(decoding: FileManager.default.contents(atPath: logPath) ?? Data(), as: UTF8.self)
    }

    /// Every line, each parsed as JSON (parsing fails the test for a torn or interleaved line).
    func lines() throws -> [JSONValue] {
        let text = contents()
        #expect(text.isEmpty || text.hasSuffix("\n"))
        return try text.split(separator: "\n").map { line throws in try JSONValue.parse(Array(line.utf8)) }
    }

    static let transitEncrypt = AuditRequest(
        id: "580354e7-0000-4000-8000-000000000001", operation: "update", path: "transit/encrypt/k1",
        data: .object(["plaintext": .string("aGVsbG8=")]), clientToken: "s.rootTokenInTheClear",
        accessor: "accessorInTheClear", displayName: "root", policies: ["root"], remoteAddress: "127.0.0.1",
        remotePort: 50412, mountPoint: "transit/", mountType: "transit")

    static let encryptReply = AuditResponse(
        data: .object([
            "ciphertext": .string("vault:v1:7ptsN+cWy3gFWM0QFhh5j1yMpe9KgDzm0MJOGtYoQwCb"), "key_version": .int(1),
        ]))

    @Test func requestAndResponseAreTwoLinesSharingTheRequestID() async throws {
        let device = try device()
        try await device.logRequest(Self.transitEncrypt)
        try await device.logResponse(Self.transitEncrypt, response: Self.encryptReply)
        let lines = try lines()
        #expect(lines.count == 2)
        #expect(lines.map { $0["type"] } == [.string("request"), .string("response")])
        #expect(lines.map { $0["request"]?["id"] } == Array(repeating: .string(Self.transitEncrypt.id), count: 2))
        for line in lines {
            guard case .string(let time)? = line["time"] else {
                Issue.record("no time in \(line)")
                continue
            }
            #expect(time.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z/) != nil, "\(time)")
            #expect(line["request"]?["namespace"] == .object(["id": .string("root")]))
            #expect(line["request"]?["mount_point"] == .string("transit/"))
            #expect(line["request"]?["remote_port"] == .int(50412))
            #expect(line["error"] == nil)
        }
        #expect(lines[0]["response"] == nil)
        #expect(lines[1]["response"]?["mount_type"] == .string("transit"))
    }

    @Test func dataStringsAreHashedAndNumbersStayNumbers() async throws {
        let device = try device()
        try await device.logRequest(Self.transitEncrypt)
        try await device.logResponse(Self.transitEncrypt, response: Self.encryptReply)
        let text = contents()
        #expect(!text.contains("aGVsbG8="))
        #expect(!text.contains("7ptsN"))
        let lines = try lines()
        #expect(lines[0]["request"]?["data"]?["plaintext"] == .string(device.hash("aGVsbG8=")))
        #expect(lines[1]["request"]?["data"]?["plaintext"] == .string(device.hash("aGVsbG8=")))
        let response = lines[1]["response"]?["data"]
        #expect(response?["key_version"] == .int(1))
        #expect(
            response?["ciphertext"] == .string(device.hash("vault:v1:7ptsN+cWy3gFWM0QFhh5j1yMpe9KgDzm0MJOGtYoQwCb")))
    }

    @Test func hashIsHMACSHA256UnderTheSaltInHex() throws {
        // Python: hmac.new(bytes(range(1, 33)), b"aGVsbG8=", hashlib.sha256).hexdigest()
        #expect(
            try device().hash("aGVsbG8=")
                == "hmac-sha256:9a1e7ef2dc20b53a4a1f7ae44859d503efcf09cc7beb481475d2733efa6791fd")
        let other = try AuditDevice(filePath: directory.path + "/other.log", salt: Array(repeating: 7, count: 32))
        #expect(other.hash("aGVsbG8=") != (try device().hash("aGVsbG8=")))
    }

    @Test func nestedValuesAreHashedRecursively() throws {
        let device = try device()
        let body: JSONValue = .object([
            "batch_input": .array([
                .object(["plaintext": .string("YQ=="), "reference": .string("r1")]), .object(["plaintext": .null]),
            ]),
            "bits": .int(256), "ratio": .double(0.5), "derived": .bool(true), "context": .null,
        ])
        #expect(
            device.hashed(body)
                == .object([
                    "batch_input": .array([
                        .object(["plaintext": .string(device.hash("YQ==")), "reference": .string(device.hash("r1"))]),
                        .object(["plaintext": .null]),
                    ]),
                    "bits": .int(256), "ratio": .double(0.5), "derived": .bool(true), "context": .null,
                ]))
    }

    @Test func theClientTokenAndAccessorNeverAppearInClear() async throws {
        let device = try device()
        let create = AuditRequest(
            id: "id-2", operation: "update", path: "auth/token/create",
            data: .object(["policies": .array([.string("default")]), "ttl": .string("1h")]),
            clientToken: "s.rootTokenInTheClear", accessor: "accessorInTheClear", displayName: "root",
            policies: ["root"])
        let issued = AuditResponse(
            auth: .object([
                "client_token": .string("s.childTokenInTheClear"), "accessor": .string("childAccessorInTheClear"),
                "policies": .array([.string("default")]), "lease_duration": .int(3600), "renewable": .bool(true),
            ]))
        try await device.logRequest(create)
        try await device.logResponse(create, response: issued)
        let text = contents()
        for secret in ["rootTokenInTheClear", "accessorInTheClear", "childTokenInTheClear"] {
            #expect(!text.contains(secret), "\(secret) in the log")
        }
        let lines = try lines()
        for line in lines {
            #expect(line["auth"]?["client_token"] == .string(device.hash("s.rootTokenInTheClear")))
            #expect(line["auth"]?["accessor"] == .string(device.hash("accessorInTheClear")))
            #expect(line["auth"]?["policies"] == .array([.string("root")]))
            #expect(line["auth"]?["token_type"] == .string("service"))
            #expect(line["request"]?["client_token"] == .string(device.hash("s.rootTokenInTheClear")))
            #expect(line["request"]?["client_token_accessor"] == .string(device.hash("accessorInTheClear")))
        }
        let auth = lines[1]["response"]?["auth"]
        #expect(auth?["client_token"] == .string(device.hash("s.childTokenInTheClear")))
        #expect(auth?["accessor"] == .string(device.hash("childAccessorInTheClear")))
        #expect(auth?["policies"] == .array([.string("default")]))
        #expect(auth?["lease_duration"] == .int(3600))
    }

    @Test func aRefusedRequestRecordsItsErrorAndNoCaller() async throws {
        let device = try device()
        let anonymous = AuditRequest(
            id: "id-3", operation: "read", path: "transit/keys/k1", data: .object([:]), clientToken: "bogus")
        try await device.logRequest(anonymous, error: "permission denied")
        try await device.logResponse(anonymous, response: AuditResponse(.permissionDenied))
        let lines = try lines()
        #expect(lines.count == 2)
        for line in lines {
            #expect(line["auth"] == .object(["token_type": .string("default")]))
            #expect(line["error"] == .string("permission denied"))
            #expect(line["request"]?["client_token"] == .string(device.hash("bogus")))
            #expect(line["request"]?["client_token_accessor"] == nil)
            #expect(line["request"]?["data"] == nil)
        }
        #expect(!contents().contains("bogus"))
    }

    @Test func concurrentRequestsWriteWholeLines() async throws {
        let device = try device()
        let filler = String(repeating: "x", count: 16_384)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for index in 0..<25 {
                        let entry = AuditRequest(
                            id: "\(task)-\(index)", operation: "update", path: "kv/data/\(task)",
                            data: .object(["value": .string(filler + "\(index)"), "n": .int(Int64(index))]))
                        try? await device.logRequest(entry)
                        try? await device.logResponse(
                            entry, response: AuditResponse(data: .object(["ok": .bool(true)])))
                    }
                }
            }
        }
        let lines = try lines()
        #expect(lines.count == 8 * 25 * 2)
        var seen: [String: Int] = [:]
        for line in lines {
            if case .string(let id)? = line["request"]?["id"] { seen[id, default: 0] += 1 }
        }
        #expect(seen.count == 8 * 25)
        #expect(seen.values.allSatisfy { $0 == 2 })
    }

    @Test func aMissingDirectoryIsAClearError() throws {
        let path = directory.path + "/no/such/dir/audit.log"
        #expect(throws: AuditError.missingDirectory(file: path, directory: directory.path + "/no/such/dir")) {
            try AuditDevice(filePath: path, salt: Self.salt)
        }
        let error = AuditError.missingDirectory(file: path, directory: directory.path + "/no/such/dir")
        #expect(error.description.contains(path))
    }

    @Test func aPathThatCannotBeOpenedForAppendingIsAClearError() throws {
        // A directory where the file should be: EISDIR even for root (tests run as root in CI).
        let path = directory.path + "/a-directory"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        do {
            _ = try AuditDevice(filePath: path, salt: Self.salt)
            Issue.record("opened a directory as the audit log")
        } catch {
            #expect(error == .file(path: path, operation: "open for appending", errno: EISDIR))
            #expect(error.description.hasPrefix("cannot open for appending '\(path)': Is a directory."))
        }
    }

    @Test func theSaltPersistsAcrossReopeningAndFilesAreOwnerOnly() throws {
        let first = try device(salt: nil).hash("aGVsbG8=")
        let second = try device(salt: nil).hash("aGVsbG8=")
        #expect(first == second)
        let salt = try #require(FileManager.default.contents(atPath: logPath + ".salt"))
        #expect(salt.count == 32)
        var expected = HMAC<SHA256>(key: SymmetricKey(data: salt))
        expected.update(data: Array("aGVsbG8=".utf8))
        #expect(first == "hmac-sha256:" + expected.finalize().map { String(format: "%02x", $0) }.joined())
        for path in [logPath, logPath + ".salt"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600, "\(path)")
        }
        #expect(!FileManager.default.fileExists(atPath: logPath + ".salt.tmp"))
    }

    @Test func aTruncatedSaltIsRefused() throws {
        #expect(FileManager.default.createFile(atPath: logPath + ".salt", contents: Data([1, 2, 3])))
        #expect(throws: AuditError.saltLength(path: logPath + ".salt", count: 3)) { try device(salt: nil) }
    }

    @Test func reopeningAppends() async throws {
        try await device().logRequest(Self.transitEncrypt)
        try await device().logResponse(Self.transitEncrypt, response: Self.encryptReply)
        #expect(try lines().count == 2)
    }

    /// logrotate's move-and-HUP: after `reopen`, lines go to a new 0600 file at the configured path and the renamed
    /// file keeps what was written before.
    @Test func reopenAfterARenameWritesANewFileAtThePath() async throws {
        let device = try device()
        try await device.logRequest(Self.transitEncrypt)
        let rotated = logPath + ".1"
        #expect(rename(logPath, rotated) == 0)
        try device.reopen()
        try await device.logResponse(Self.transitEncrypt, response: Self.encryptReply)
        #expect(try lines().map { $0["type"] } == [.string("response")])
        let attributes = try FileManager.default.attributesOfItem(atPath: logPath)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let old = String(decoding: try #require(FileManager.default.contents(atPath: rotated)), as: UTF8.self)
        #expect(old.split(separator: "\n").count == 1)
        #expect(old.contains(#""type":"request""#))
    }

    /// A reopen that fails (the directory went away) keeps the old file: no line is lost.
    @Test func aFailedReopenKeepsWritingToTheOldFile() async throws {
        let inner = directory.path + "/inner"
        try FileManager.default.createDirectory(atPath: inner, withIntermediateDirectories: false)
        let path = inner + "/audit.log"
        let device = try AuditDevice(filePath: path, salt: Self.salt)
        let moved = directory.path + "/moved"
        #expect(rename(inner, moved) == 0)
        #expect(throws: AuditError.missingDirectory(file: path, directory: inner)) { try device.reopen() }
        try await device.logRequest(Self.transitEncrypt)
        let text = String(
            decoding: try #require(FileManager.default.contents(atPath: moved + "/audit.log")), as: UTF8.self)
        #expect(text.contains(#""type":"request""#))
    }
}
