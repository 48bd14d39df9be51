import Glibc

#if Emulator
let emulatorBuild = true
#else
let emulatorBuild = false
#endif

// PID 1 boots whatever its arguments (the kernel passes unrecognised parameters to init). Any other process
// is an operator checking a configuration.
if getpid() == 1 {
    // LUKSBootVolume: the BootVolume implementation over the Volume library (libcryptsetup).
    BootSequence(volume: LUKSBootVolume(), emulatorAvailable: emulatorBuild).run()
}
exit(CheckConfig.run(Array(CommandLine.arguments.dropFirst()), emulatorAvailable: emulatorBuild))
