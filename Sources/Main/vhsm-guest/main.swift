import Boot
import Glibc
import KeyService

// The initramfs carries one program under two names (it is /init, and /usr/bin/vhsmd links to it). As PID 1 it is
// the boot program: the kernel starts /init before /proc is mounted, and the Swift runtime may then see no
// arguments at all. Otherwise the name it was started as picks the program; any other name is refused rather
// than guessed.
let name = CommandLine.arguments.first.map { String($0.split(separator: "/").last ?? "") } ?? ""
switch name {
case _ where getpid() == 1, "init", "vhsm-init":
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
