/// A failure the CLI prints as one line (`vhsm: …`) before exiting with its code.
struct CLIError: Error, CustomStringConvertible {
    /// 1: refused or not acceptable; 2: usage or unreadable input.
    var exitCode: Int32
    var description: String

    static func usage(_ text: String) -> CLIError { CLIError(exitCode: 2, description: text) }
    static func input(_ path: String, _ problem: String) -> CLIError {
        CLIError(exitCode: 2, description: "\(path): \(problem)")
    }
    static func refused(_ text: String) -> CLIError { CLIError(exitCode: 1, description: text) }
}
