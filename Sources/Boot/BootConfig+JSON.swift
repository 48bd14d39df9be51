import SNP
import Sealing
import StrictJSON

extension BootConfig {
    /// The effective configuration in `init.json`'s shape, every key present (`vhsm-init --check-config`).
    /// Reading it back with `load(file:commandLine:)` gives the same effective values.
    var json: JSON {
        func string(_ text: String?) -> JSON { text.map(JSON.string) ?? .null }
        func number(_ value: Int) -> JSON { .number(UInt64(max(value, 0))) }
        let effectiveModules = effectiveModules
        return .object([
            (
                "attestation",
                .object([
                    ("provider", .string(attestation.provider.rawValue)), ("path", string(attestation.effectivePath)),
                ])
            ),
            ("seal", .string(seal.rawValue)),
            ("min_tcb", string(minimumTCB?.hex)),
            ("allow_smt", .bool(allowSMT)),
            ("volume", .string(volume)),
            ("mapper", .string(mapperName)),
            ("mount", .string(mountPoint)),
            ("integrity", .bool(integrity)),
            ("modules", .array(effectiveModules.map(JSON.string))),
            (
                "network",
                .object([
                    ("mode", .string(network.mode.rawValue)), ("interface", .string(network.interface)),
                    ("address", .string(network.address.description)),
                    ("gateway", string(network.gateway?.description)),
                ])
            ),
            (
                "handoff",
                .object([
                    ("mode", .string(handoff.mode.rawValue)), ("service", .string(handoff.service)),
                    ("args", .array(handoff.arguments.map(JSON.string))),
                    ("stop_timeout_ms", number(handoff.stopTimeoutMilliseconds)), ("root", string(handoff.root)),
                    ("root_hash", string(handoff.rootHash.map { Hex.encode($0) })),
                    ("root_salt", string(handoff.rootSalt.map { $0.isEmpty ? "-" : Hex.encode($0) })),
                    ("root_data_blocks", handoff.rootDataBlocks.map(number) ?? .null),
                    ("root_hash_offset", handoff.rootHashOffset.map(number) ?? .null),
                    ("root_hash_device", string(handoff.rootHashDevice)),
                    ("fstype", .string(handoff.filesystemType)), ("init", .string(handoff.initPath)),
                    ("user", .string(handoff.user.description)),
                ])
            ),
            (
                "restart",
                .object([
                    ("initial_ms", number(restart.initialMilliseconds)),
                    ("max_ms", number(restart.maximumMilliseconds)),
                    ("fast_ms", number(restart.fastRunMilliseconds)),
                    ("fast_limit", number(restart.fastFailureLimit)),
                ])
            ),
            ("on_failure", .string(failureAction.rawValue)),
            ("recovery_key", string(recoveryKeyPEM)),
            ("device_wait_ms", number(deviceWaitMilliseconds)),
        ])
    }
}
