import Crypto
import Synchronization

/// A file audit device, as OpenBao's `file` type: two JSON lines per audited request ("request" before handling,
/// "response" after) appended to one file, every string of request and response data replaced by
/// `hmac-sha256:<hex>` under the device's salt. A line is on disk before `logRequest`/`logResponse` returns;
/// lines from concurrent requests never interleave.
final class AuditDevice: Sendable {
    /// The device's path in `sys/audit` and `sys/audit-hash/:path` (`file`).
    let name: String
    let filePath: String
    private let key: SymmetricKey
    private let file: Mutex<AuditLogFile>

    /// Opens the log at `filePath` (its directory must exist) with the salt from `<filePath>.salt`, created if
    /// absent; `salt` replaces the salt file (tests).
    init(name: String = "file", filePath: String, salt: [UInt8]? = nil) throws(AuditError) {
        let file = try AuditLogFile(path: filePath)
        self.name = name
        self.filePath = filePath
        if let salt {
            key = SymmetricKey(data: salt)
        } else {
            key = SymmetricKey(data: try AuditSalt.loadOrCreate(at: filePath + ".salt"))
        }
        self.file = Mutex(file)
    }

    /// `hmac-sha256:` and the hex HMAC-SHA256 of `value` under the salt: what the log shows for a string, and
    /// what `sys/audit-hash/:path {input}` answers.
    func hash(_ value: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(value.utf8), using: key)
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        hex.reserveCapacity(2 * SHA256.byteCount)
        for byte in mac {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0x0F)])
        }
        return "hmac-sha256:" + String(decoding: hex, as: UTF8.self)
    }

    /// The "request" line, written before the request is handled. `error` is set when the request is refused
    /// before handling (`permission denied`).
    func logRequest(_ entry: AuditRequest, error: String? = nil) throws(AuditError) {
        try append(requestLine(entry, error: error, time: TransitTime.rfc3339(TransitTime.now())))
    }

    /// The "response" line, written after the request was handled (or failed).
    func logResponse(_ entry: AuditRequest, response: AuditResponse) throws(AuditError) {
        try append(responseLine(entry, response: response, time: TransitTime.rfc3339(TransitTime.now())))
    }

    /// The device as `GET sys/audit` lists it (under the key `"<name>/"`).
    var listing: JSONValue {
        .object([
            "type": .string("file"), "description": .string(""), "path": .string(name + "/"), "local": .bool(false),
            "options": .object(["file_path": .string(filePath)]),
        ])
    }

    private func append(_ line: JSONValue) throws(AuditError) {
        let bytes = line.serialized + [UInt8(ascii: "\n")]
        try file.withLock { (file) throws(AuditError) in try file.append(bytes) }
    }
}
