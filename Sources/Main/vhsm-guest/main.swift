import Boot
import Glibc
import KeyService

// The initramfs carries one program under two names (it is /init, and /usr/bin/vhsmd links to it): the name it
// was started as picks the program. Any other name is refused rather than guessed.
let name = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
switch name {
case "init", "vhsm-init":
    VHSMInitProgram.main()
case "vhsmd":
    await VHSMDProgram.main()
default:
    let message =
        "vhsm-guest: started as '\(name)', which names no program: run it as /init or vhsm-init (the boot "
        + "program) or as vhsmd (the key service), e.g. through a link with that name\n"
    _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(2)
}
