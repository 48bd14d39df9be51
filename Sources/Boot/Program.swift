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
    /// `prepareService`: what the guest binary, which links vhsmd, does before vhsmd starts (derive its barrier
    /// keys); the host-side vhsm-init has none, and then starts the service confined without a handoff.
    public static func main(prepareService: PrepareService? = nil) -> Never {
        if getpid() == 1 {
            // LUKSBootVolume: the BootVolume implementation over the Volume library (libcryptsetup).
            BootSequence(
                volume: LUKSBootVolume(), emulatorAvailable: emulatorBuild, prepareService: prepareService
            ).run()
        }
        exit(CheckConfig.run(Array(CommandLine.arguments.dropFirst()), emulatorAvailable: emulatorBuild))
    }
}
