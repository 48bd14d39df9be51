import CLinux
import Glibc
import SNP
import Volume

/// DESIGN §3 step 9, switch_root (busybox `switch_root` / systemd `switch-root.c` semantics, reference/anchors.md
/// §6.5): mount the new root, move the API filesystems and the volume into it, free the initramfs, make the new
/// root `/` and exec its init. Returns only by throwing; after the initramfs is deleted nothing can go back.
///
/// Only into what was measured: a `/dev/…` root is opened through the kernel's dm-verity target with the root
/// hash, salt and size from the measured configuration (never from the disk), read through once so that every
/// block is checked before anything on it runs, and mounted read-only. `handoff.root=volume` (the unlocked volume
/// itself) is accepted only when the volume has `hmac(sha256)` integrity. There is no fallback.
enum SwitchRoot {
    static let newRootPath = "/sysroot"
    /// The device-mapper name of the verified root: `/dev/mapper/vhsm-root`.
    static let verityName = "vhsm-root"
    /// RAMFS_MAGIC and TMPFS_MAGIC (linux/magic.h): the old root must be one of them before anything is deleted.
    static let initramfsMagics: Set<Int> = [0x8584_58f6, 0x0102_1994]

    /// `volumeIntegrity`: the unlocked volume has `hmac(sha256)` integrity (its validated header says so).
    static func run(_ config: BootConfig, volumeIntegrity: Bool) throws(BootError) -> Never {
        guard let root = config.handoff.root else {
            throw BootError(
                stage: .handoff, cause: "handoff.root is not set",
                next: "set handoff.root in init.json or vhsm.handoff.root= on the kernel command line")
        }
        let initPath = config.handoff.initPath
        // Before anything changes: the root must be one this configuration can verify.
        let verity: VerityRoot?
        if root == "volume" {
            try checkVolumeRoot(config, integrity: volumeIntegrity)
            verity = nil
        } else {
            verity = try verityRoot(config)
        }
        try step("make / private", next: "the initramfs root must be a mount") {
            () throws(SystemError) in try Mounts.remount("/", flags: UInt(MS_REC | MS_PRIVATE))
        }
        let newRoot: String
        if let verity {
            newRoot = newRootPath
            let mapped = try openVerified(verity, config: config)
            try step(
                "mount \(mapped) (\(root), verified) read-only",
                next: "check handoff.fstype (\(config.handoff.filesystemType)): the image veritysetup hashed must "
                    + "hold a clean filesystem of that type with blocks of 4096 bytes or more (mke2fs -b 4096)"
            ) {
                () throws(SystemError) in
                try Files.makeDirectories(newRoot)
                try Mounts.mount(
                    .init(
                        source: mapped, target: newRoot, type: config.handoff.filesystemType,
                        flags: UInt(MS_RDONLY), data: nil))
            }
            try step(
                "move \(config.mountPoint) into the new root",
                next: "the verified root is read-only: its image must contain the directory \(config.mountPoint)"
            ) {
                () throws(SystemError) in
                try Files.makeDirectories(newRoot + config.mountPoint)
                try Mounts.move(config.mountPoint, to: newRoot + config.mountPoint)
            }
        } else {
            newRoot = config.mountPoint
        }
        guard access(newRoot + initPath, X_OK) == 0 else {
            throw BootError(
                stage: .handoff, cause: "\(newRoot)\(initPath) is not an executable (\(SystemError.describe(errno)))",
                next: "check handoff.init and the contents of handoff.root")
        }
        // The new system's modprobe resolves on-demand requests again.
        try? ModuleLoader.restoreKernelModprobe()
        for api in ["/dev", "/proc", "/sys", "/run"] {
            try step("move \(api)", next: "the new root's image must contain the directory \(api)") {
                () throws(SystemError) in
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

    /// The dm-verity root of `config`, or the refusal: a `/dev/…` root is never used without the root hash, salt
    /// and data blocks from the measured configuration. Changes nothing.
    static func verityRoot(_ config: BootConfig) throws(BootError) -> VerityRoot {
        let root = config.handoff.root ?? "(none)"
        let configured: VerityRoot?
        do throws(VolumeError) { configured = try config.verityRoot() } catch {
            throw BootError(
                stage: .handoff, cause: "the dm-verity parameters of \(root) are unusable: \(error)",
                next: "copy the values veritysetup format printed into handoff.root_hash, handoff.root_salt and "
                    + "handoff.root_data_blocks (check with vhsm-init --check-config)")
        }
        guard let configured else {
            throw BootError(
                stage: .handoff,
                cause: "refusing to switch into \(root) without dm-verity: the measured configuration has no "
                    + "handoff.root_hash, handoff.root_salt and handoff.root_data_blocks for it",
                next: "build the root with 'veritysetup format --no-superblock' and put its root hash, salt and data "
                    + "blocks in init.json or the vhsm.handoff.* kernel parameters (check with vhsm-init --check-config)"
            )
        }
        return configured
    }

    /// `handoff.root=volume`: only a volume with integrity protection, so that a block the host changed is a read
    /// error instead of code that runs.
    static func checkVolumeRoot(_ config: BootConfig, integrity: Bool) throws(BootError) {
        guard integrity else {
            throw BootError(
                stage: .handoff,
                cause: "refusing to switch into the volume \(config.volume): its LUKS2 header has no integrity "
                    + "protection (expected hmac(sha256), found none), so the host could change blocks of the new "
                    + "root unnoticed",
                next: "switch into a dm-verity root (handoff.root=/dev/… with handoff.root_hash), or use a volume "
                    + "formatted with integrity: true")
        }
    }

    /// Waits for the root's disks, activates `/dev/mapper/vhsm-root` through dm-verity and reads it through once.
    /// Returns the mapped device.
    private static func openVerified(_ verity: VerityRoot, config: BootConfig) throws(BootError) -> String {
        for device in Set([verity.dataDevice, verity.hashDevice]).sorted() {
            guard Files.waitFor(device, milliseconds: config.deviceWaitMilliseconds) else {
                throw BootError(
                    stage: .handoff, cause: "\(device) did not appear within \(config.deviceWaitMilliseconds) ms",
                    next: "attach the root disk (handoff.root, handoff.root_hash_device) and load its driver")
            }
        }
        let start = Monotonic.now()
        let mapped: String
        do throws(VolumeError) { mapped = try verity.activate(as: verityName) } catch {
            throw BootError(
                stage: .handoff, cause: "cannot open \(verity.dataDevice) through dm-verity: \(error)",
                next: "check that dm_verity loaded (the modules line above) and that handoff.root, "
                    + "handoff.root_hash_device and handoff.root_data_blocks (\(verity.dataBlocks)) match the disks")
        }
        if let failure = readThrough(mapped, bytes: verity.dataBytes) {
            throw refusal(verity, mapped: mapped, failure: failure)
        }
        Console.say(
            "vhsm-init: switch_root: \(verity.dataDevice) verified by dm-verity (root hash "
                + "\(Hex.encode(verity.rootHash)), \(verity.dataBytes >> 20) MiB read in "
                + "\(Monotonic.milliseconds(Monotonic.now() - start)) ms)")
        return mapped
    }

    /// Why reading the verified device stopped: where, and the errno (EIO: the kernel refused a block).
    struct ReadFailure: Equatable {
        var offset: UInt64
        var errno: Int32
    }

    /// Reads `bytes` bytes of `device` from the start, so that dm-verity checks every data block (and the tree
    /// above it) before anything on it runs. Nil when all of it was read.
    static func readThrough(_ device: String, bytes: UInt64) -> ReadFailure? {
        let fd = open(device, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return ReadFailure(offset: 0, errno: errno) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < bytes {
            let wanted = Int(min(UInt64(buffer.count), bytes - offset))
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, wanted) }
            if count < 0 {
                if errno == EINTR { continue }
                return ReadFailure(offset: offset, errno: errno)
            }
            if count == 0 { return ReadFailure(offset: offset, errno: ENXIO) }
            offset += UInt64(count)
        }
        return nil
    }

    /// The handoff failure for a read the kernel refused: the configured root hash against the root hash of the
    /// tree on the disk, and which part of the image differs.
    static func refusal(_ verity: VerityRoot, mapped: String, failure: ReadFailure) -> BootError {
        let block = failure.offset / UInt64(VerityRoot.blockSize)
        let configured = Hex.encode(verity.rootHash)
        var cause =
            "dm-verity refused \(verity.dataDevice): reading \(mapped) failed at byte \(failure.offset) (data block "
            + "\(block)): \(SystemError.describe(failure.errno)); configured root hash \(configured)"
        do throws(VolumeError) {
            let stored = try verity.storedRootHash()
            cause += ", the hash tree on \(verity.hashDevice) has root hash \(Hex.encode(stored))"
            if stored == verity.rootHash {
                cause += " (its top matches, so a data block or a lower hash block was changed)"
            }
        } catch {
            cause += "; the hash tree on \(verity.hashDevice) cannot be read: \(error)"
        }
        return BootError(
            stage: .handoff, cause: cause,
            next: "the root image is not the one veritysetup format hashed: restore the disk, or rebuild it and put "
                + "the new root hash, salt and data blocks in the measured configuration; the kernel's "
                + "'verity: … is corrupted' line on the console names the block")
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
