/// The secrets engines `sys/mounts` can enable, by type.
enum Engines {
    static let factories: [String: @Sendable (_ path: String, _ options: [String: JSONValue]) -> any Backend] = [
        "kv": { _, _ in KVBackend() },
        "transit": { _, _ in TransitBackend(store: TransitStore()) },
    ]
}
