import SNP
import Sealing

/// The boot agent's configuration: `/etc/vhsm/init.json` in the initramfs, then `vhsm.*` parameters from
/// `/proc/cmdline` on top (both are part of the launch measurement). Unknown keys are errors, in both places.
///
/// A dotted key is a member path in the file and a parameter on the command line: `network.address` is
/// `{"network": {"address": …}}` in `init.json` and `vhsm.network.address=…` on the command line. A section
/// given a string sets its first field: `"network": "none"`, `vhsm.handoff=switch_root`,
/// `vhsm.attestation=emulator`. On the command line `-` and `_` in names are the same (as for kernel
/// parameters), lists are comma-separated (`modules`) or space-separated in quotes (`handoff.args`), a bare
/// boolean key means true (`vhsm.integrity`).
///
/// | key | values | default | meaning |
/// |---|---|---|---|
/// | `attestation.provider` | `sev-guest`, `tsm`, `emulator` | `sev-guest` | who answers MSG_REPORT_REQ / MSG_KEY_REQ; never a fallback. `emulator` only in a build with the `Emulator` trait; `tsm` is refused (configfs-tsm has no MSG_KEY_REQ) |
/// | `attestation.path` | path | `/dev/sev-guest`; `/dev/vport0p1` for `emulator` | the device (or virtio-serial port) to open |
/// | `seal` | `measurement`, `platform`, `image` | `measurement` | what the sealing key is bound to (DESIGN §4); a new volume is enrolled with it, an existing one is opened with the mode its token records and must match |
/// | `min_tcb` | TCB_VERSION, 16 hex digits in report order, or `null` | `null` | refuse to enroll or unlock when a component of the report's COMMITTED_TCB is below this one's (the pinned TCB is COMMITTED_TCB, never the host-set REPORTED_TCB) |
/// | `allow_smt` | boolean | `false` | accept a guest policy that allows SMT; DEBUG and MIGRATE_MA are always refused |
/// | `volume` | `/dev/…` or `UUID=<luks uuid>` | `/dev/vda` | the LUKS2 data volume; a first boot needs a path (a blank disk has no UUID) |
/// | `mapper` | name | `vhsm` | the device-mapper name: `/dev/mapper/<mapper>` |
/// | `mount` | absolute path | `/var/lib/vhsm` | where the ext4 filesystem is mounted |
/// | `integrity` | boolean | `false` | format with `hmac(sha256)` integrity (first boot only; later boots follow the header) |
/// | `modules` | list of module names | see `defaultModules` | kernel modules to load, dependencies first; a name ending in `?` may be missing or refuse the hardware (`aesni_intel?`) |
/// | `network.mode` | `static`, `none` | `static` | configure an interface, or leave only `lo` up |
/// | `network.interface` | name | `eth0` | |
/// | `network.address` | `a.b.c.d/prefix` | `10.0.2.15/24` | QEMU user networking's guest address |
/// | `network.gateway` | `a.b.c.d` or `none` | `10.0.2.2` | default route |
/// | `handoff.mode` | `supervise`, `switch_root` | `supervise` | stay PID 1 and run the service, or switch into a root filesystem |
/// | `handoff.service` | absolute path | `/usr/bin/vhsmd` | supervise: the service |
/// | `handoff.args` | list of strings | `[]` | supervise: its arguments (argv[1…]) |
/// | `handoff.stop_timeout_ms` | integer | `10000` | supervise: SIGTERM → SIGKILL grace period at shutdown |
/// | `handoff.user` | `uid:gid`, both above 0 | `8200:8200` | supervise: the unprivileged user and group the service runs as (no /etc/passwd in the initramfs: numbers), with no supplementary groups, no_new_privs and the seccomp filter; the trees it owns are chowned to it |
/// | `handoff.root` | `/dev/…` or `volume` | none | switch_root: the new root, a dm-verity image (`volume`: the unlocked volume itself, only with `integrity`) |
/// | `handoff.root_hash` | 64 hex digits | none | switch_root: the dm-verity root hash (SHA-256) of `handoff.root`, as `veritysetup format` printed it; required for a `/dev/…` root |
/// | `handoff.root_salt` | hex (at most 256 bytes), or `-` for none | none | switch_root: the salt `veritysetup format` printed; required for a `/dev/…` root |
/// | `handoff.root_data_blocks` | integer | none | switch_root: the data blocks (4096 bytes each) the root hash covers; required for a `/dev/…` root |
/// | `handoff.root_hash_offset` | integer, a multiple of 4096 | `root_data_blocks` × 4096 | switch_root: byte offset of the hash tree on the hash device (`--hash-offset` of `veritysetup format --no-superblock`) |
/// | `handoff.root_hash_device` | `/dev/…` | `handoff.root` | switch_root: the device holding the hash tree |
/// | `handoff.fstype` | name | `ext4` | switch_root: filesystem type of `handoff.root` (mounted read-only) |
/// | `handoff.init` | absolute path | `/sbin/init` | switch_root: the program to exec in the new root |
/// | `restart.initial_ms` | integer | `200` | supervise: first restart delay, doubled per consecutive fast failure |
/// | `restart.max_ms` | integer | `30000` | supervise: largest restart delay |
/// | `restart.fast_ms` | integer | `10000` | supervise: a run shorter than this is a fast failure |
/// | `restart.fast_limit` | integer | `5` | supervise: this many fast failures in a row → `on_failure` |
/// | `on_failure` | `halt`, `reboot` | `halt` | after the failure line: `halt` powers off (`reboot(RB_POWER_OFF)`, which ends a QEMU VM), `reboot` restarts (`RB_AUTOBOOT`) |
/// | `recovery_key` | PEM public key or `null` | `null` | the operator's recovery public key (P-384 or X25519); without it a new volume gets no recovery keyslot |
/// | `device_wait_ms` | integer | `10000` | how long to wait for device nodes and the interface to appear after module loading |
struct BootConfig: Equatable, Sendable {
    enum Provider: String, CaseIterable, Sendable {
        case sevGuest = "sev-guest"
        case tsm
        case emulator

        var defaultPath: String {
            switch self {
            case .sevGuest: "/dev/sev-guest"
            case .tsm: "/sys/kernel/config/tsm/report"
            case .emulator: "/dev/vport0p1"
            }
        }
    }

    enum FailureAction: String, CaseIterable, Sendable {
        case halt, reboot
    }

    enum NetworkMode: String, CaseIterable, Sendable {
        case `static`, none
    }

    enum HandoffMode: String, CaseIterable, Sendable {
        case supervise
        case switchRoot = "switch_root"
    }

    struct Attestation: Equatable, Sendable {
        var provider: Provider = .sevGuest
        /// Nil: the provider's default path.
        var path: String?

        var effectivePath: String { path ?? provider.defaultPath }
    }

    struct Network: Equatable, Sendable {
        var mode: NetworkMode = .static
        var interface = "eth0"
        var address = IPv4Interface(address: IPv4Address(10, 0, 2, 15), prefixLength: 24)
        var gateway: IPv4Address? = IPv4Address(10, 0, 2, 2)
    }

    struct Handoff: Equatable, Sendable {
        var mode: HandoffMode = .supervise
        var service = "/usr/bin/vhsmd"
        var arguments: [String] = []
        var stopTimeoutMilliseconds = 10_000
        var user = ServiceUser(uid: 8200, gid: 8200)
        var root: String?
        /// The dm-verity parameters of a `/dev/…` root (`VerityRoot` fixes the rest: SHA-256, format 1,
        /// 4096-byte blocks).
        var rootHash: [UInt8]?
        /// Empty: no salt.
        var rootSalt: [UInt8]?
        var rootDataBlocks: Int?
        /// Nil: right after the data, `rootDataBlocks` × 4096.
        var rootHashOffset: Int?
        /// Nil: `root` itself.
        var rootHashDevice: String?
        var filesystemType = "ext4"
        var initPath = "/sbin/init"

        /// True when any dm-verity key is set.
        var hasVerityKeys: Bool {
            rootHash != nil || rootSalt != nil || rootDataBlocks != nil || rootHashOffset != nil
                || rootHashDevice != nil
        }

        /// A `/dev/…` root: switch_root into it through dm-verity.
        var switchesIntoVerityRoot: Bool { mode == .switchRoot && root != nil && root != "volume" }
    }

    struct Restart: Equatable, Sendable {
        var initialMilliseconds = 200
        var maximumMilliseconds = 30_000
        var fastRunMilliseconds = 10_000
        var fastFailureLimit = 5
    }

    var attestation = Attestation()
    var seal: SealMode = .measurement
    /// `min_tcb`: nil, no minimum beyond what the firmware enforces.
    var minimumTCB: TCBVersion?
    var allowSMT = false
    var volume = "/dev/vda"
    var mapperName = "vhsm"
    var mountPoint = "/var/lib/vhsm"
    var integrity = false
    /// Nil: `defaultModules`.
    var modules: [String]?
    var network = Network()
    var handoff = Handoff()
    var restart = Restart()
    var failureAction: FailureAction = .halt
    var recoveryKeyPEM: String?
    var deviceWaitMilliseconds = 10_000

    /// The modules the configuration needs when `modules` is not set, for the Debian 12 kernel (DESIGN §8):
    /// the block device, dm-crypt and the ciphers its `aes-xts-plain64` mapping asks for (the kernel finds no
    /// modprobe in the initramfs), the crypto user API libcryptsetup's keyslots use, ext4, the ACPI power
    /// button and evdev for orderly shutdown, and the provider's and the network's drivers.
    var defaultModules: [String] {
        var names = [
            "virtio_pci", "virtio_blk", "dm_mod", "dm_crypt", "ecb", "xts", "aesni_intel?", "af_alg",
            "algif_skcipher", "algif_hash", "crc32c_generic", "ext4", "button", "evdev",
        ]
        if integrity { names += ["dm_integrity", "authenc"] }
        // dm-verity (with dm-bufio and reed_solomon from modules.dep); SHA-256 is built into the Debian kernel.
        if handoff.switchesIntoVerityRoot { names.append("dm_verity") }
        switch attestation.provider {
        case .sevGuest: names.append("sev_guest")
        case .emulator: names.append("virtio_console")
        case .tsm: break
        }
        if network.mode == .static { names.append("virtio_net") }
        return names
    }

    var effectiveModules: [String] { modules ?? defaultModules }

    /// What a launch must meet before this configuration enrolls or unlocks (`min_tcb`, `allow_smt`).
    var sealing: SealingRequirements { SealingRequirements(minimumTCB: minimumTCB, allowSMT: allowSMT) }

    /// `/dev/mapper/<mapper>`.
    var mapperPath: String { "/dev/mapper/\(mapperName)" }
}
