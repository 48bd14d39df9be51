import StrictJSON

/// `vhsm-init --check-config FILE [--cmdline STRING]`: reads a configuration as PID 1 would (FILE as
/// `/etc/vhsm/init.json`, STRING as `/proc/cmdline`), validates it for this build and prints the effective
/// configuration as JSON. Exit status 0 when it is accepted, 2 when not (with the reason on standard error).
/// Operators run it before baking an image; the host's own /proc/cmdline is never read.
enum CheckConfig {
    static let usage = "usage: vhsm-init --check-config FILE [--cmdline STRING]"

    /// The exit status; output goes through `out` and `err`.
    static func run(
        _ arguments: [String], emulatorAvailable: Bool, out: (String) -> Void = Console.say,
        err: (String) -> Void = Console.complain
    ) -> Int32 {
        var file: String?
        var commandLine = ""
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            switch argument {
            case "--check-config" where index + 1 < arguments.count && file == nil:
                file = arguments[index + 1]
                index += 2
            case "--cmdline" where index + 1 < arguments.count:
                commandLine = arguments[index + 1]
                index += 2
            default:
                err("vhsm-init: unexpected argument '\(argument)'")
                err(usage)
                err("vhsm-init runs as PID 1 in the initramfs; on a host it only checks configurations")
                return 2
            }
        }
        guard let file else {
            err(usage)
            return 2
        }
        let bytes: [UInt8]
        do throws(SystemError) { bytes = try Files.read(file) } catch {
            err("vhsm-init: config failed: \(ConfigError.unreadable(path: file, reason: error.reason))")
            return 2
        }
        let check = ConfigCheck(
            file: bytes, filePath: file, commandLine: Array(commandLine.utf8), emulatorAvailable: emulatorAvailable)
        if let effective = check.effective {
            out(effective)
            return 0
        }
        err("vhsm-init: config failed: \(check.refusal ?? "refused")")
        return 2
    }
}
