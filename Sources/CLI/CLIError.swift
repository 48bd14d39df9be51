/// A failure the CLI prints as one line (`vhsm: …`) before exiting with its code.
///
/// The exit codes are one contract for every command (`vhsm --help` and the README list them):
/// 0 success; 1 refused or not acceptable; 2 usage error or unreadable input; 3 the Secure Processor (the device,
/// configfs-tsm or the emulator's socket) or the server could not be reached, before anything was decided.
struct CLIError: Error, CustomStringConvertible {
    var exitCode: Int32
    var description: String
    /// A usage error: `main` adds a line pointing at the command's `--help`.
    var pointsAtHelp = false

    static let refusedCode: Int32 = 1
    static let usageCode: Int32 = 2
    static let unreachableCode: Int32 = 3

    static func usage(_ text: String) -> CLIError {
        CLIError(exitCode: usageCode, description: text, pointsAtHelp: true)
    }
    static func input(_ path: String, _ problem: String) -> CLIError {
        CLIError(exitCode: usageCode, description: "\(path): \(problem)")
    }
    static func refused(_ text: String) -> CLIError { CLIError(exitCode: refusedCode, description: text) }
    /// The device, configfs-tsm, the emulator's socket or the server did not answer: nothing was decided, and
    /// trying again later may work (exit 3).
    static func unreachable(_ text: String) -> CLIError { CLIError(exitCode: unreachableCode, description: text) }
}
