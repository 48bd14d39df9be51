import Glibc
import Synchronization

/// Fault injection for the power-cut tests (scripts/powercut-provision-test.sh), in the emulator build only: the
/// host names one point with `-fw_cfg name=opt/org.vhsm/power-cut,string=POINT` (`image/launch --power-cut`);
/// when vhsm-init reaches it, it flushes everything (`sync`), prints `vhsm-init: test power cut at POINT` and
/// blocks forever, and the test kills QEMU. A build without the `Emulator` trait has none of this: `arm` and `at`
/// do nothing and no fw_cfg file is read.
enum PowerCut {
    /// The points, in the order a first boot passes them.
    static let points = [
        "after-header", "after-keyslot", "after-token", "integrity-wipe", "mkfs", "vhsmd-first-writes",
    ]
    static let fwCfgName = "opt/org.vhsm/power-cut"

    #if Emulator
    private static let armed = Mutex<String?>(nil)

    /// Loads `qemu_fw_cfg` (when the initramfs has it) and reads the point the host asked for, if any.
    static func arm() {
        if let release = try? ModuleLoader.kernelRelease(), let index = try? ModuleLoader().index(release: release),
            let steps = try? index.plan(["qemu_fw_cfg?"])
        {
            for step in steps { _ = try? ModuleLoader().perform(step, release: release, optional: true) }
        }
        guard let text = try? Files.readText("/sys/firmware/qemu_fw_cfg/by_name/\(fwCfgName)/raw") else { return }
        let point = text.trimmingCharacters()
        guard points.contains(point) else {
            Console.say(
                "vhsm-init: test power cut: unknown point '\(point)' ignored (known: \(points.joined(separator: ", ")))"
            )
            return
        }
        armed.withLock { $0 = point }
        Console.say("vhsm-init: test power cut armed at \(point)")
    }

    static func isArmed(_ point: String) -> Bool { armed.withLock { $0 == point } }

    /// At `point`, when it is the armed one: sync, say so, and never return.
    static func at(_ point: String) {
        guard isArmed(point) else { return }
        sync()
        Console.say("vhsm-init: test power cut at \(point)")
        while true { pause() }
    }
    #else
    static func arm() {}
    static func isArmed(_ point: String) -> Bool { false }
    static func at(_ point: String) {}
    #endif
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var text = Substring(self)
        while let last = text.last, last == "\n" || last == " " || last == "\0" { text = text.dropLast() }
        return String(text)
    }
}
