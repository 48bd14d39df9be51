import CLinux
import Glibc

/// How PID 1 ends: reboot(2) after sync(2). PID 1 never returns from main (the kernel would panic).
enum PowerControl {
    /// Powers off (RB_POWER_OFF): ends a QEMU VM, and with `-no-reboot` that is what the tests wait for.
    static func powerOff() -> Never {
        finish(CLINUX_RB_POWER_OFF, "powering off")
    }

    /// Restarts (RB_AUTOBOOT).
    static func restart() -> Never {
        finish(CLINUX_RB_AUTOBOOT, "rebooting")
    }

    /// The configured failure action: `halt` powers off (a halted CVM holds the host's resources and does
    /// nothing useful), `reboot` restarts.
    static func perform(_ action: BootConfig.FailureAction) -> Never {
        switch action {
        case .halt: powerOff()
        case .reboot: restart()
        }
    }

    /// Ctrl-Alt-Del sends SIGINT to PID 1 instead of rebooting at once, so it becomes an orderly shutdown.
    static func routeCtrlAltDelToSignal() {
        _ = CLinux.reboot(CLINUX_RB_DISABLE_CAD)
    }

    private static func finish(_ command: Int32, _ what: String) -> Never {
        Console.say("vhsm-init: \(what)")
        sync()
        _ = CLinux.reboot(command)
        // Only reached when reboot(2) is refused (not PID 1, or no CAP_SYS_BOOT): stay, never exit.
        Console.say("vhsm-init: reboot(2) failed: \(SystemError.describe(errno)); stopping here")
        while true { pause() }
    }
}
