import ArgumentParser
import Volume

extension VHSM {
    struct VolumeCommands: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "volume",
            abstract: "Inspect vhsm's LUKS2 volumes, recover them with the operator's recovery key and move them to a "
                + "new launch.",
            discussion: """
                Works on image files and block devices without device-mapper: nothing is activated.

                Exit codes: as 'vhsm --help' lists them; each command's --help says which it returns and when.
                """,
            subcommands: [VolumeInspect.self, VolumeRecover.self, VolumeReenroll.self])
    }
}

extension CLIError {
    /// Volume failures: unreadable inputs are usage errors (2), everything the volume refuses is 1.
    static func volume(_ error: VolumeError) -> CLIError {
        switch error {
        case .io, .invalidArgument: CLIError(exitCode: 2, description: error.description)
        default: .refused(error.description)
        }
    }
}
