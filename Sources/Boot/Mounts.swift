import Glibc

/// mount(2) and umount2(2) for the boot agent.
enum Mounts {
    struct Spec {
        var source: String
        var target: String
        var type: String
        var flags: UInt
        var data: String?
    }

    /// DESIGN §3 step 1: the API filesystems. devtmpfs gives device nodes without udev; /run/cryptsetup is
    /// libcryptsetup's lock directory.
    static let early: [Spec] = [
        Spec(source: "proc", target: "/proc", type: "proc", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)),
        Spec(source: "sysfs", target: "/sys", type: "sysfs", flags: UInt(MS_NOSUID | MS_NODEV | MS_NOEXEC)),
        Spec(source: "devtmpfs", target: "/dev", type: "devtmpfs", flags: UInt(MS_NOSUID), data: "mode=0755"),
        Spec(source: "tmpfs", target: "/run", type: "tmpfs", flags: UInt(MS_NOSUID | MS_NODEV), data: "mode=0755"),
    ]

    /// Mounts `early`; one already mounted (EBUSY) is fine.
    static func mountEarly() throws(SystemError) {
        for spec in early {
            try Files.makeDirectories(spec.target)
            do throws(SystemError) { try mount(spec) } catch  where error.errno == EBUSY {}
        }
        try Files.makeDirectories("/run/cryptsetup", mode: 0o700)
    }

    static func mount(_ spec: Spec) throws(SystemError) {
        let result =
            if let data = spec.data {
                Glibc.mount(spec.source, spec.target, spec.type, spec.flags, data)
            } else {
                Glibc.mount(spec.source, spec.target, spec.type, spec.flags, nil)
            }
        guard result == 0 else { throw SystemError("mount", "\(spec.source) on \(spec.target) (\(spec.type))") }
    }

    /// The unlocked volume's ext4 filesystem.
    static func mountVolume(_ device: String, at target: String) throws(SystemError) {
        try Files.makeDirectories(target)
        try mount(Spec(source: device, target: target, type: "ext4", flags: UInt(MS_NOSUID | MS_NODEV)))
    }

    /// mount(NULL, path, NULL, flags, NULL): propagation changes.
    static func remount(_ path: String, flags: UInt) throws(SystemError) {
        guard Glibc.mount(nil, path, nil, flags, nil) == 0 else { throw SystemError("mount", "--make-private \(path)") }
    }

    /// MS_MOVE of the mount at `source` to `target`.
    static func move(_ source: String, to target: String) throws(SystemError) {
        guard Glibc.mount(source, target, nil, UInt(MS_MOVE), nil) == 0 else {
            throw SystemError("mount --move", "\(source) to \(target)")
        }
    }

    /// Unmounts `target`; when it is busy, detaches it lazily and says so through the returned flag.
    static func unmount(_ target: String) throws(SystemError) -> Bool {
        if umount2(target, 0) == 0 { return false }
        guard errno == EBUSY else { throw SystemError("umount", target) }
        guard umount2(target, Int32(MNT_DETACH)) == 0 else { throw SystemError("umount -l", target) }
        return true
    }
}
