/// The enabled audit devices. An entry is recorded when at least one device records it; when devices are
/// enabled and none can, the request fails (Vault's rule). With no device enabled nothing is audited.
struct AuditBroker: Sendable {
    /// Paths never audited: load balancers and monitors poll them, and they answer state anyone may see. Unlike
    /// Vault, `sys/init` is audited: it issues the root token.
    static let unaudited: Set<String> = [
        "sys/seal-status", "sys/seal", "sys/unseal", "sys/leader", "sys/health",
    ]

    let devices: [AuditDevice]

    init(devices: [AuditDevice] = []) { self.devices = devices }

    /// Should a request to `path` (below `/v1/`, no slashes at the ends) be recorded?
    func audits(_ path: String) -> Bool { !devices.isEmpty && !Self.unaudited.contains(path) }

    /// The device `sys/audit-hash/:path` names (`file` or `file/`).
    func device(named name: String) -> AuditDevice? {
        var name = Substring(name)
        while name.hasSuffix("/") { name = name.dropLast() }
        return devices.first { $0.name == name }
    }

    /// `GET sys/audit`'s data: each device under `"<name>/"`.
    var listing: JSONValue {
        .object(Dictionary(devices.map { ($0.name + "/", $0.listing) }, uniquingKeysWith: { first, _ in first }))
    }

    /// Records the "request" line on every device. Returns the failures of devices that could not (to be
    /// logged) when another could; throws when none could.
    @discardableResult
    func logRequest(_ entry: AuditRequest, error: String? = nil) async throws(AuditError) -> [AuditError] {
        try await record { (device) async throws(AuditError) in try await device.logRequest(entry, error: error) }
    }

    /// Records the "response" line; failures as for `logRequest`.
    @discardableResult
    func logResponse(_ entry: AuditRequest, response: AuditResponse) async throws(AuditError) -> [AuditError] {
        try await record { (device) async throws(AuditError) in try await device.logResponse(entry, response: response)
        }
    }

    private func record(
        _ write: (AuditDevice) async throws(AuditError) -> Void
    ) async throws(AuditError) -> [AuditError] {
        var failures: [AuditError] = []
        for device in devices {
            do { try await write(device) } catch { failures.append(error) }
        }
        if !devices.isEmpty, failures.count == devices.count { throw .noDeviceRecorded(failures: failures) }
        return failures
    }
}
