import Sealing
import StrictJSON
import Volume

/// Reading the configuration: the file's object, then the command line, each key checked against
/// `ConfigKeys`, then `validate(emulatorAvailable:)` for combinations.
extension BootConfig {
    /// A value as it arrives: a JSON value from the file, or text (or nothing) from a kernel parameter.
    enum Input {
        case json(JSON)
        case text(String?)
    }

    static let fileSource = "init.json"
    static let commandLineSource = "kernel command line"

    /// The defaults, overridden by `file` (the contents of init.json; nil when the file is absent), overridden by
    /// the `vhsm.*` parameters of `commandLine`.
    static func load(
        file: [UInt8]?, filePath: String = "/etc/vhsm/init.json", commandLine: KernelCommandLine
    ) throws(ConfigError) -> BootConfig {
        var config = BootConfig()
        if let file {
            let document: JSON
            do throws(JSONSyntaxError) { document = try JSON.parse(file) } catch {
                throw .syntax(path: filePath, error)
            }
            guard case .object(let members) = document else {
                throw .wrongType(key: "(document)", expected: "an object", actual: document.described, source: filePath)
            }
            for (key, value) in members { try config.apply(key: key, .json(value), source: filePath) }
        }
        for parameter in commandLine.parameters(withPrefix: "vhsm.") {
            let key = parameter.name.replacingDashes()
            try config.apply(key: key, .text(parameter.value), source: commandLineSource)
        }
        return config
    }

    /// Applies one setting. A section key given an object applies each member; given a string, it sets the
    /// section's first field.
    mutating func apply(key: String, _ input: Input, source: String) throws(ConfigError) {
        if let fields = ConfigKeys.sections[key] {
            switch input {
            case .json(.object(let members)):
                for (member, value) in members {
                    guard fields.contains(member) else { throw .unknownKey("\(key).\(member)", source: source) }
                    try applyField("\(key).\(member)", input: .json(value), source: source)
                }
            case .json(.string), .text:
                guard let field = ConfigKeys.shorthand(for: key) else {
                    throw .wrongType(
                        key: key, expected: "an object (set \(key).<field>)", actual: "a string", source: source)
                }
                try applyField("\(key).\(field)", input: input, source: source)
            case .json(let other):
                let expected = ConfigKeys.shorthand(for: key) == nil ? "an object" : "an object or a string"
                throw .wrongType(key: key, expected: expected, actual: other.kind, source: source)
            }
            return
        }
        let parts = key.split(separator: ".", maxSplits: 1).map(String.init)
        if parts.count == 2, let fields = ConfigKeys.sections[parts[0]], fields.contains(parts[1]) {
            try applyField(key, input: input, source: source)
        } else if ConfigKeys.scalars.contains(key) {
            try applyField(key, input: input, source: source)
        } else {
            throw .unknownKey(key, source: source)
        }
    }

    private mutating func applyField(_ key: String, input: Input, source: String) throws(ConfigError) {
        let value = ConfigValue(key: key, input: input, source: source)
        switch key {
        case "attestation.provider": attestation.provider = try value.choice(Provider.self)
        case "attestation.path": attestation.path = try value.absolutePath()
        case "seal": seal = try value.choice(SealMode.self)
        case "min_tcb": minimumTCB = try value.tcb()
        case "allow_smt": allowSMT = try value.boolean()
        case "volume": volume = try value.volume()
        case "mapper": mapperName = try value.mapperName()
        case "mount": mountPoint = try value.absolutePath()
        case "integrity": integrity = try value.boolean()
        case "modules": modules = try value.moduleNames()
        case "network.mode": network.mode = try value.choice(NetworkMode.self)
        case "network.interface": network.interface = try value.interfaceName()
        case "network.address": network.address = try value.interfaceAddress()
        case "network.gateway": network.gateway = try value.gateway()
        case "handoff.mode": handoff.mode = try value.choice(HandoffMode.self)
        case "handoff.service": handoff.service = try value.absolutePath()
        case "handoff.args": handoff.arguments = try value.arguments()
        case "handoff.stop_timeout_ms": handoff.stopTimeoutMilliseconds = try value.integer(in: 0...3_600_000)
        case "handoff.root": handoff.root = try value.root()
        case "handoff.root_hash": handoff.rootHash = try value.hexDigest(bytes: VerityRoot.rootHashBytes)
        case "handoff.root_salt": handoff.rootSalt = try value.salt(maximumBytes: VerityRoot.maximumSaltBytes)
        case "handoff.root_data_blocks": handoff.rootDataBlocks = try value.optionalInteger(in: 1...(1 << 40))
        case "handoff.root_hash_offset":
            handoff.rootHashOffset = try value.optionalInteger(in: 0...(1 << 52), multipleOf: VerityRoot.blockSize)
        case "handoff.root_hash_device": handoff.rootHashDevice = try value.devicePath()
        case "handoff.user": handoff.user = try value.serviceUser()
        case "handoff.fstype": handoff.filesystemType = try value.word()
        case "handoff.init": handoff.initPath = try value.absolutePath()
        case "restart.initial_ms": restart.initialMilliseconds = try value.integer(in: 1...3_600_000)
        case "restart.max_ms": restart.maximumMilliseconds = try value.integer(in: 1...3_600_000)
        case "restart.fast_ms": restart.fastRunMilliseconds = try value.integer(in: 0...86_400_000)
        case "restart.fast_limit": restart.fastFailureLimit = try value.integer(in: 1...1000)
        case "on_failure": failureAction = try value.choice(FailureAction.self)
        case "recovery_key": recoveryKeyPEM = try value.pem()
        case "device_wait_ms": deviceWaitMilliseconds = try value.integer(in: 0...600_000)
        default: throw .unknownKey(key, source: source)
        }
    }

    /// Checks what single keys cannot: the provider against this build, and the hand-off's needs.
    func validate(emulatorAvailable: Bool) throws(ConfigError) {
        switch attestation.provider {
        case .emulator where !emulatorAvailable:
            throw .inconsistent(
                "attestation.provider 'emulator' needs a test build of vhsm-init (SwiftPM trait Emulator); "
                    + "this is a production build")
        case .tsm:
            throw .inconsistent(
                "attestation.provider 'tsm' gives reports only: configfs-tsm has no MSG_KEY_REQ, and the sealing "
                    + "key needs one; use 'sev-guest'")
        default: break
        }
        if attestation.path != nil, attestation.provider == .tsm {
            throw .inconsistent("attestation.path does not apply to 'tsm'")
        }
        guard restart.initialMilliseconds <= restart.maximumMilliseconds else {
            throw .inconsistent(
                "restart.initial_ms (\(restart.initialMilliseconds)) is above restart.max_ms "
                    + "(\(restart.maximumMilliseconds))")
        }
        if handoff.mode == .switchRoot { try validateSwitchRoot() }
        if handoff.root == mapperPath {
            throw .inconsistent("handoff.root \(mapperPath) is mounted at \(mountPoint) already; use 'volume'")
        }
        if mountPoint == "/" {
            throw .inconsistent("mount must not be '/': the initramfs is the root until the hand-off")
        }
    }
}

extension BootConfig {
    /// switch_root goes only into what the measured configuration names: a `/dev/…` root through dm-verity with
    /// its root hash, salt and size from here, or the unlocked volume when it has integrity protection.
    fileprivate func validateSwitchRoot() throws(ConfigError) {
        guard let root = handoff.root else {
            throw .inconsistent("handoff.mode 'switch_root' needs handoff.root (a /dev/… path or 'volume')")
        }
        if root == "volume" {
            guard integrity else {
                throw .inconsistent(
                    "handoff.root 'volume' needs integrity: true (hmac(sha256)); without it the host can change "
                        + "blocks of the root unnoticed. Switch into a dm-verity root on a /dev/… device instead")
            }
            guard !handoff.hasVerityKeys else {
                throw .inconsistent(
                    "handoff.root_hash, root_salt, root_data_blocks, root_hash_offset and root_hash_device describe "
                        + "a dm-verity root on a /dev/… device, not handoff.root 'volume'")
            }
            return
        }
        var missing: [String] = []
        if handoff.rootHash == nil { missing.append("handoff.root_hash") }
        if handoff.rootSalt == nil { missing.append("handoff.root_salt") }
        if handoff.rootDataBlocks == nil { missing.append("handoff.root_data_blocks") }
        guard missing.isEmpty else {
            throw .inconsistent(
                "handoff.mode 'switch_root' into \(root) needs \(missing.joined(separator: ", ")): vhsm-init switches "
                    + "only into a dm-verity root whose root hash, salt and data blocks are in the measured "
                    + "configuration (as 'veritysetup format --no-superblock' prints them)")
        }
        if root == mapperPath || handoff.rootHashDevice == mapperPath {
            throw .inconsistent("the dm-verity root and its hash tree cannot be \(mapperPath), the sealed volume")
        }
        do throws(VolumeError) { _ = try verityRoot() } catch {
            throw .inconsistent("handoff.root \(root): \(error)")
        }
    }

    /// The dm-verity root of a `/dev/…` `handoff.root`, from the configured values; nil when a value is missing.
    func verityRoot() throws(VolumeError) -> VerityRoot? {
        guard let root = handoff.root, root != "volume", let hash = handoff.rootHash, let salt = handoff.rootSalt,
            let dataBlocks = handoff.rootDataBlocks
        else { return nil }
        return try VerityRoot(
            dataDevice: root, hashDevice: handoff.rootHashDevice ?? root, rootHash: hash,
            salt: salt, dataBlocks: UInt64(dataBlocks),
            hashOffset: UInt64(handoff.rootHashOffset ?? dataBlocks * VerityRoot.blockSize))
    }
}

extension String {
    /// Kernel parameter names treat `-` and `_` alike; keys are spelled with `_`.
    fileprivate func replacingDashes() -> String {
        String(map { $0 == "-" ? "_" : $0 })
    }
}
