import Glibc
import SNP
import SNPGuest

/// DESIGN §3 step 9, before supervising: the service gets what it needs and nothing more. PID 1 derives what the
/// service would have asked the Secure Processor for (`PrepareService`, vhsmd's barrier keys), gives the service
/// its data (chowned to `handoff.user`), takes the device away from it (root, mode 0600, PID 1's own descriptors
/// close-on-exec), and serves it reports only (the report broker on `ServiceLayout.reportSocket`).
enum ServiceStart {
    struct Launch {
        var descriptorContents: [UInt8]?
        var arguments: [String]
    }

    static func prepare(
        _ config: BootConfig, device: any GuestDevice, prepareService: PrepareService?
    ) throws(BootError) -> Launch {
        let user = config.handoff.user
        var launch = Launch(descriptorContents: nil, arguments: [])
        var owned = [config.mountPoint]
        if let prepareService {
            let context = ServiceHandoffContext(
                arguments: config.handoff.arguments, device: device, descriptor: ServiceLayout.descriptor,
                reportSocket: ServiceLayout.reportSocket)
            let handoff: ServiceHandoff
            do { handoff = try prepareService(context) } catch {
                throw BootError(
                    stage: .handoff, cause: "preparing \(config.handoff.service): \(error)",
                    next: "check the service's configuration (handoff.args) and its data in \(config.mountPoint); "
                        + "nothing was started")
            }
            for line in handoff.lines { Console.say(line) }
            launch = Launch(descriptorContents: handoff.descriptorContents, arguments: handoff.arguments)
            owned += handoff.ownedPaths
        }
        for path in owned {
            let failures = Ownership.give(path, to: user)
            guard failures.isEmpty else {
                throw BootError(
                    stage: .handoff,
                    cause: "cannot give \(path) to \(user): \(failures.prefix(3).joined(separator: "; "))",
                    next: "the service's data must be on a filesystem with owners (ext4)")
            }
        }
        for path in Set([config.attestation.effectivePath, BootConfig.Provider.sevGuest.defaultPath]) {
            do throws(SystemError) { try Ownership.restrictToRoot(path) } catch {
                throw BootError(
                    stage: .handoff, cause: "cannot make \(path) root's alone: \(error)",
                    next: "the Secure Processor's device must not be usable by the service")
            }
        }
        do throws(SystemError) { try Ownership.runDirectory(ServiceLayout.runDirectory, group: user.gid) } catch {
            throw BootError(stage: .handoff, cause: error.description, next: "/run must be a writable tmpfs")
        }
        do throws(ReportBrokerError) {
            let listener = try ReportBrokerListener(
                path: ServiceLayout.reportSocket, owner: (uid: user.uid, gid: user.gid))
            try listener.start(device: device)
        } catch {
            throw BootError(stage: .handoff, cause: "\(error)", next: "the kernel needs CONFIG_UNIX")
        }
        Console.say(
            "vhsm-init: \(config.handoff.service) runs as \(user) without \(config.attestation.effectivePath); "
                + "reports from \(ServiceLayout.reportSocket)")
        return launch
    }
}
