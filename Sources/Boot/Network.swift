import CLinux
import Glibc

/// DESIGN §3 step 8: `lo` up, and a static IPv4 address and default route on one interface, with the classic
/// ioctls (SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFFLAGS, SIOCADDRT); the Debian kernel has no CONFIG_IP_PNP and the
/// initramfs no `ip`.
enum Network {
    static func configure(_ config: BootConfig) throws(BootError) -> [String] {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else {
            throw BootError(
                stage: .network, cause: SystemError("socket", "AF_INET").description,
                next: "the kernel needs CONFIG_INET")
        }
        defer { close(fd) }
        try check(clinux_if_up(fd, "lo"), "SIOCSIFFLAGS lo up", next: "the loopback device should always exist")
        guard config.network.mode == .static else { return ["lo up; network.mode none"] }
        let network = config.network
        let name = network.interface
        guard Files.waitFor("/sys/class/net/\(name)", milliseconds: config.deviceWaitMilliseconds) else {
            let present = ((try? Files.list("/sys/class/net")) ?? []).joined(separator: ", ")
            throw BootError(
                stage: .network,
                cause: "interface \(name) did not appear within \(config.deviceWaitMilliseconds) ms "
                    + "(present: \(present.isEmpty ? "none" : present))",
                next: "load the NIC's driver (modules: virtio_net for QEMU's virtio-net-pci) or set network.interface")
        }
        try check(
            clinux_if_set_address(fd, name, network.address.address.networkOrder, network.address.netmask.networkOrder),
            "SIOCSIFADDR/SIOCSIFNETMASK \(name) \(network.address)", next: "check network.address")
        try check(clinux_if_up(fd, name), "SIOCSIFFLAGS \(name) up", next: "check the NIC driver's messages")
        var lines = ["\(name) \(network.address)"]
        if let gateway = network.gateway {
            try check(
                clinux_add_default_route(fd, gateway.networkOrder), "SIOCADDRT default via \(gateway)",
                next: "the gateway must lie inside \(network.address)")
            lines.append("default via \(gateway)")
        }
        return lines
    }

    private static func check(_ result: Int32, _ what: String, next: String) throws(BootError) {
        guard result == 0 else {
            throw BootError(stage: .network, cause: "\(what): \(SystemError.describe(-result))", next: next)
        }
    }
}
