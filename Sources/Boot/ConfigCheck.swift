import StrictJSON

/// vhsm-init's reading of its configuration: `init.json`, then the `vhsm.*` parameters of the kernel command line,
/// then the checks of combinations (`BootConfig.load`, `validate`). `--check-config` prints its outcome; the
/// `cmdline-config` fuzz target (issue 16) drives it through this one package-level entry and compares outcomes,
/// never the configuration's own types.
package struct ConfigCheck: Equatable, Sendable {
    let config: BootConfig?
    /// The refusal as vhsm-init prints it; nil when the configuration is accepted.
    package let refusal: String?
    /// The effective configuration in `init.json`'s shape, every key present (`--check-config`'s output); nil
    /// when refused.
    package let effective: String?

    /// Reads `file` (init.json's bytes, nil when absent; `filePath` names it in refusals) and `commandLine`
    /// (/proc/cmdline's bytes) as PID 1 does.
    package init(
        file: [UInt8]?, filePath: String = BootConfig.fileSource, commandLine: [UInt8], emulatorAvailable: Bool
    ) {
        do throws(ConfigError) {
            let config = try BootConfig.load(
                file: file, filePath: filePath, commandLine: KernelCommandLine(bytes: commandLine))
            try config.validate(emulatorAvailable: emulatorAvailable)
            self.config = config
            refusal = nil
            effective = config.json.rendered()
        } catch {
            config = nil
            refusal = error.description
            effective = nil
        }
    }

    package var accepted: Bool { config != nil }

    /// The command line's parameters as vhsm-init splits them, in order.
    package static func parameters(_ commandLine: [UInt8]) -> [(name: String, value: String?)] {
        KernelCommandLine(bytes: commandLine).parameters.map { ($0.name, $0.value) }
    }
}
