import Glibc

/// What the volume stage needs from the system besides the volume itself: mke2fs, randomness, the list of
/// block devices.
enum VolumeSupport {
    /// mke2fs on the mapped device of a volume in state provisioning. `-F`: a resumed first boot makes the
    /// filesystem again over whatever an interrupted mke2fs left (no user data exists before the volume is ready).
    static func makeFilesystem(_ device: String) throws(BootError) {
        let mke2fs = "/sbin/mke2fs"
        let arguments = ["-t", "ext4", "-q", "-F", device]
        let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        if PowerCut.isArmed("mkfs") {
            // The power-cut test: the cut lands while mke2fs writes.
            _ = try? Spawn.start(mke2fs, arguments: arguments, environment: environment, newSession: false)
            usleep(150_000)
            PowerCut.at("mkfs")
        }
        let status: WaitStatus
        do throws(SystemError) {
            status = try Spawn.run(mke2fs, arguments: arguments, environment: environment)
        } catch {
            throw BootError(stage: .volume, cause: error.description, next: "pack \(mke2fs) into the initramfs")
        }
        guard status.succeeded else {
            throw BootError(
                stage: .volume, cause: "\(mke2fs) \(arguments.joined(separator: " ")): \(status)",
                next: "read mke2fs's message above; the volume is enrolled but has no filesystem")
        }
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    /// Whole disks and partitions under /dev, for `UUID=`: everything in /sys/class/block except device-mapper,
    /// loop, RAM and optical devices.
    static func blockDevices() -> [String] {
        let skipped = ["dm-", "loop", "ram", "sr", "zram"]
        return ((try? Files.list("/sys/class/block")) ?? [])
            .filter { name in !skipped.contains { name.hasPrefix($0) } }
            .map { "/dev/\($0)" }
    }
}
