import Crypto
import Synchronization

/// A file audit device, as OpenBao's `file` type: two JSON lines per audited request ("request" before handling,
/// "response" after) appended to one file, every string of request and response data replaced by
/// `hmac-sha256:<hex>` under the device's salt. A line is on disk before `logRequest`/`logResponse` returns;
/// lines from concurrent requests never interleave.
///
/// Group commit: lines that arrive while a write is on its way to disk are written together with one
/// `fdatasync` by the next round, so concurrent requests share the cost of the sync instead of queueing for it.
final class AuditDevice: Sendable {
    /// The device's path in `sys/audit` and `sys/audit-hash/:path` (`file`).
    let name: String
    let filePath: String
    private let key: SymmetricKey
    private let file: Mutex<AuditLogFile>
    private let pending = Mutex(Pending())

    /// Lines waiting for the next commit, the requests waiting for them, and whether a commit is under way.
    private struct Pending {
        var lines: [[UInt8]] = []
        var waiters: [CheckedContinuation<AuditError?, Never>] = []
        var committing = false
    }

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

    /// A device appending to `descriptor` (already open for writing; closed with the device) under `salt`, with
    /// `path` as its file path (tests: a file whose writes fail, such as /dev/full).
    init(name: String = "file", path: String, descriptor: Int32, salt: [UInt8]) {
        self.name = name
        self.filePath = path
        key = SymmetricKey(data: salt)
        self.file = Mutex(AuditLogFile(path: path, descriptor: descriptor))
    }

    /// Opens the file at `filePath` anew (created 0600 if absent) and appends there from now on: after logrotate
    /// renamed the log, new lines go to a new file at the configured path. A line being written finishes in the old
    /// file first. When the new file cannot be opened, the device keeps the old one and the error is thrown.
    func reopen() throws(AuditError) {
        try file.withLock { (file) throws(AuditError) in file = try AuditLogFile(path: filePath) }
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
    func logRequest(_ entry: AuditRequest, error: String? = nil) async throws(AuditError) {
        try await append(requestLine(entry, error: error, time: TransitTime.rfc3339(TransitTime.now())))
    }

    /// The "response" line, written after the request was handled (or failed).
    func logResponse(_ entry: AuditRequest, response: AuditResponse) async throws(AuditError) {
        try await append(responseLine(entry, response: response, time: TransitTime.rfc3339(TransitTime.now())))
    }

    /// The device as `GET sys/audit` lists it (under the key `"<name>/"`).
    var listing: JSONValue {
        .object([
            "type": .string("file"), "description": .string(""), "path": .string(name + "/"), "local": .bool(false),
            "options": .object(["file_path": .string(filePath)]),
        ])
    }

    /// Queues the line and returns once it is on disk. The caller that finds no commit under way becomes the
    /// committer: it writes every queued line with one sync, and repeats while lines keep arriving until its
    /// own line is on disk and one more round has run; what is left then goes to a new task.
    private func append(_ line: JSONValue) async throws(AuditError) {
        let bytes = line.serialized + [UInt8(ascii: "\n")]
        let failure: AuditError? = await withCheckedContinuation { continuation in
            let commits = pending.withLock { state in
                state.lines.append(bytes)
                state.waiters.append(continuation)
                if state.committing { return false }
                state.committing = true
                return true
            }
            if commits { commit(rounds: 2) }
        }
        if let failure { throw failure }
    }

    private func commit(rounds: Int) {
        for _ in 0..<rounds {
            let (lines, waiters) = pending.withLock { state in
                defer { (state.lines, state.waiters) = ([], []) }
                return (state.lines, state.waiters)
            }
            if waiters.isEmpty { break }
            var failure: AuditError?
            do { try file.withLock { (file) throws(AuditError) in try file.append(Array(lines.joined())) } } catch {
                failure = error
            }
            for waiter in waiters { waiter.resume(returning: failure) }
        }
        let more = pending.withLock { state in
            if state.lines.isEmpty { state.committing = false }
            return !state.lines.isEmpty
        }
        if more { Task { self.commit(rounds: Int.max) } }
    }
}
