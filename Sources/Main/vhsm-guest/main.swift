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
    // PID 1 derives vhsmd's barrier keys (vhsmd's own code, from its configuration) and hands them over on an
    // inherited descriptor; vhsmd then runs unprivileged, without the Secure Processor.
    VHSMInitProgram.main(prepareService: { context in
        let prepared = try VHSMDHandoff.prepare(
            arguments: context.arguments, device: context.device, descriptor: context.descriptor,
            reportSocket: context.reportSocket)
        return ServiceHandoff(
            descriptorContents: prepared.descriptorContents, ownedPaths: prepared.ownedPaths,
            arguments: prepared.arguments, lines: prepared.lines)
    })
case "vhsmd":
    await VHSMDProgram.main()
default:
    let message =
        "vhsm-guest: started as '\(name)', which names no program: run it as /init or vhsm-init (the boot "
        + "program) or as vhsmd (the key service), e.g. through a link with that name\n"
    _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(2)
}
