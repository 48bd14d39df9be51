import CLinux
import Glibc

/// DESIGN §3 step 9, switch_root (busybox `switch_root` / systemd `switch-root.c` semantics, reference/anchors.md
/// §6.5): mount the new root, move the API filesystems and the volume into it, free the initramfs, make the new
/// root `/` and exec its init. Returns only by throwing; after the initramfs is deleted nothing can go back.
enum SwitchRoot {
    static let newRootPath = "/sysroot"
    /// RAMFS_MAGIC and TMPFS_MAGIC (linux/magic.h): the old root must be one of them before anything is deleted.
    static let initramfsMagics: Set<Int> = [0x8584_58f6, 0x0102_1994]

    static func run(_ config: BootConfig) throws(BootError) -> Never {
        guard let root = config.handoff.root else {
            throw BootError(stage: .handoff, cause: "handoff.root is not set", next: "set handoff.root")
        }
        let newRoot = root == "volume" ? config.mountPoint : newRootPath
        let initPath = config.handoff.initPath
        try step("make / private", next: "the initramfs root must be a mount") {
            () throws(SystemError) in try Mounts.remount("/", flags: UInt(MS_REC | MS_PRIVATE))
        }
        if root != "volume" {
            guard Files.waitFor(root, milliseconds: config.deviceWaitMilliseconds) else {
                throw BootError(
                    stage: .handoff, cause: "\(root) did not appear within \(config.deviceWaitMilliseconds) ms",
                    next: "attach the root disk and load its driver")
            }
            try step("mount \(root)", next: "check handoff.root and handoff.fstype (\(config.handoff.filesystemType))")
            {
                () throws(SystemError) in
                try Files.makeDirectories(newRoot)
                try Mounts.mount(
                    .init(source: root, target: newRoot, type: config.handoff.filesystemType, flags: 0, data: nil))
            }
            try step("move \(config.mountPoint) into the new root", next: "the new root needs \(config.mountPoint)") {
                () throws(SystemError) in
                try Files.makeDirectories(newRoot + config.mountPoint)
                try Mounts.move(config.mountPoint, to: newRoot + config.mountPoint)
            }
        }
        guard access(newRoot + initPath, X_OK) == 0 else {
            throw BootError(
                stage: .handoff, cause: "\(newRoot)\(initPath) is not an executable (\(SystemError.describe(errno)))",
                next: "check handoff.init and the contents of handoff.root")
        }
        // The new system's modprobe resolves on-demand requests again.
        try? ModuleLoader.restoreKernelModprobe()
        for api in ["/dev", "/proc", "/sys", "/run"] {
            try step("move \(api)", next: "the new root needs a \(api) directory") { () throws(SystemError) in
                if mkdir(newRoot + api, 0o755) != 0, errno != EEXIST { throw SystemError("mkdir", newRoot + api) }
                try Mounts.move(api, to: newRoot + api)
            }
        }
        try step("chdir \(newRoot)", next: "") { () throws(SystemError) in
            guard chdir(newRoot) == 0 else { throw SystemError("chdir", newRoot) }
        }
        let magic = clinux_filesystem_type("/")
        if initramfsMagics.contains(magic) {
            let report = TreeRemoval().removeContents(of: "/")
            Console.say(
                "vhsm-init: switch_root: freed the initramfs (\(report.removed) entries; kept "
                    + "\(report.keptMounts.joined(separator: ", ")))")
            for failure in report.failures.prefix(5) { Console.say("vhsm-init: switch_root: \(failure)") }
        } else {
            Console.say("vhsm-init: switch_root: / is not ramfs/tmpfs (0x\(String(magic, radix: 16))); not deleting it")
        }
        try step("move the new root to /", next: "") { () throws(SystemError) in
            try Mounts.move(".", to: "/")
            guard chroot(".") == 0 else { throw SystemError("chroot", ".") }
            guard chdir("/") == 0 else { throw SystemError("chdir", "/") }
        }
        Console.say("vhsm-init: switch_root: exec \(initPath)")
        let error = execInit(initPath)
        throw BootError(
            stage: .handoff, cause: "execv \(initPath) in the new root: \(error.reason)",
            next: "check handoff.init; the initramfs is gone, so the failure action follows")
    }

    private static func execInit(_ path: String) -> SystemError {
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        defer { free(argv[0]) }
        execv(path, &argv)
        return SystemError("execv", path)
    }

    private static func step(
        _ what: String, next: String, _ body: () throws(SystemError) -> Void
    ) throws(BootError) {
        do throws(SystemError) { try body() } catch {
            throw BootError(
                stage: .handoff, cause: "switch_root: \(what): \(error)", next: next.isEmpty ? "see the cause" : next)
        }
    }
}
