import Glibc

/// vhsm-init's entry point, called by the `vhsm-init` executable and by the initramfs's multi-call `vhsm-guest`
/// when it runs as `/init`.
public enum VHSMInitProgram {
    #if Emulator
    static let emulatorBuild = true
    #else
    static let emulatorBuild = false
    #endif

    /// PID 1 boots whatever its arguments (the kernel passes unrecognised parameters to init). Any other process
    /// is an operator checking a configuration.
    public static func main() -> Never {
        if getpid() == 1 {
            // LUKSBootVolume: the BootVolume implementation over the Volume library (libcryptsetup).
            BootSequence(volume: LUKSBootVolume(), emulatorAvailable: emulatorBuild).run()
        }
        exit(CheckConfig.run(Array(CommandLine.arguments.dropFirst()), emulatorAvailable: emulatorBuild))
    }
}
