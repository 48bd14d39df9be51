import StrictJSON

/// Why the configuration was refused. Each description names the key and where it came from.
enum ConfigError: Error, Equatable, CustomStringConvertible {
    /// `source` is `init.json` (or the file's path) or `kernel command line`.
    case unknownKey(String, source: String)
    case wrongType(key: String, expected: String, actual: String, source: String)
    case invalidValue(key: String, value: String, expected: String, source: String)
    case missingValue(key: String, source: String)
    case syntax(path: String, JSONSyntaxError)
    case unreadable(path: String, reason: String)
    /// A combination of settings that cannot work.
    case inconsistent(String)

    var description: String {
        switch self {
        case .unknownKey(let key, let source):
            "unknown key '\(key)' in \(source) (known: \(ConfigKeys.all.joined(separator: ", ")))"
        case .wrongType(let key, let expected, let actual, let source):
            "'\(key)' in \(source) must be \(expected), not \(actual)"
        case .invalidValue(let key, let value, let expected, let source):
            "'\(key)' in \(source) is '\(value)'; expected \(expected)"
        case .missingValue(let key, let source):
            "'\(key)' in \(source) needs a value"
        case .syntax(let path, let error):
            "\(path): \(error)"
        case .unreadable(let path, let reason):
            "cannot read \(path): \(reason)"
        case .inconsistent(let reason):
            reason
        }
    }
}

/// The allow-list: every key the configuration accepts, as dotted paths. Sections also accept a string.
enum ConfigKeys {
    static let sections: [String: [String]] = [
        "attestation": ["provider", "path"],
        "network": ["mode", "interface", "address", "gateway"],
        "handoff": [
            "mode", "service", "args", "stop_timeout_ms", "root", "root_hash", "root_salt", "root_data_blocks",
            "root_hash_offset", "root_hash_device", "fstype", "init", "user",
        ],
        "restart": ["initial_ms", "max_ms", "fast_ms", "fast_limit"],
    ]

    static let scalars = [
        "seal", "min_tcb", "allow_smt", "volume", "mapper", "mount", "integrity", "modules", "on_failure",
        "recovery_key", "device_wait_ms",
    ]

    /// The field a string given to a whole section sets: its mode or provider. `restart` has none.
    static func shorthand(for section: String) -> String? {
        section == "restart" ? nil : sections[section]?.first
    }

    static let all: [String] = {
        var keys = ["attestation.provider", "attestation.path", "seal", "min_tcb", "allow_smt", "volume", "mapper"]
        keys += ["mount", "integrity"]
        keys += ["modules"] + sections["network"]!.map { "network.\($0)" }
        keys += sections["handoff"]!.map { "handoff.\($0)" } + sections["restart"]!.map { "restart.\($0)" }
        keys += ["on_failure", "recovery_key", "device_wait_ms"]
        return keys
    }()
}
