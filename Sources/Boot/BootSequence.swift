import Glibc
import SNP

/// The boot sequence of DESIGN §3, as PID 1. Every stage is timed on the console; the first failure prints its
/// two lines and applies the failure action. Nothing here returns.
struct BootSequence<Volume: BootVolume> {
    static var version: String { "0.1.0" }

    var volume: Volume
    var emulatorAvailable: Bool
    var configPath = "/etc/vhsm/init.json"
    /// The guest binary's preparation of vhsmd (its barrier keys); nil in the host-side vhsm-init.
    var prepareService: PrepareService?

    func run() -> Never {
        let start = Monotonic.now()
        var failureAction = BootConfig.FailureAction.halt
        do throws(BootError) {
            // The version line comes first; the API filesystems (and with /dev, maybe the console) come before it.
            let mountsStart = Monotonic.now()
            let mounted: SystemError?
            do throws(SystemError) {
                try Mounts.mountEarly()
                mounted = nil
            } catch {
                mounted = error
            }
            Console.attach()
            Console.say("vhsm-init \(Self.version)\(emulatorAvailable ? " (emulator test build)" : "") as PID 1")
            if let mounted {
                throw BootError(
                    stage: .mounts, cause: mounted.description, next: "the kernel needs DEVTMPFS, PROC_FS, SYSFS, TMPFS"
                )
            }
            Console.say("vhsm-init: mounts \(Monotonic.milliseconds(Monotonic.now() - mountsStart)) ms")
            let config = try Console.timed("config") { () throws(BootError) in try loadConfig() }
            failureAction = config.failureAction
            try Console.timed("modules") { () throws(BootError) in try loadModules(config) }
            if emulatorAvailable { PowerCut.arm() }
            let (attestation, report) = try Console.timed("attest") { () throws(BootError) in
                let attestation = try Attestation.open(config)
                return (attestation, try attestation.report())
            }
            for line in Attestation.summary(report) { Console.say(line) }
            setenv("DM_DISABLE_UDEV", "1", 1)
            let stage = VolumeStage(
                volume: volume, config: config, report: report,
                deriveKey: { (enrollment) throws(BootError) in
                    try Console.timed("derive") { () throws(BootError) in try attestation.sealingKey(for: enrollment) }
                },
                makeRequest: { (uuid, publicKey) throws(BootError) in
                    try attestation.recoveryRequest(volumeUUID: uuid, publicKey: publicKey)
                },
                makeFilesystem: { (device) throws(BootError) in try VolumeSupport.makeFilesystem(device) },
                randomBytes: VolumeSupport.randomBytes, say: Console.say, candidates: VolumeSupport.blockDevices)
            let result = try Console.timed("volume") { () throws(BootError) in try stage.run() }
            Console.say(
                "vhsm-init: \(result.device) "
                    + (result.firstBoot ? "enrolled" : result.reenrolled ? "re-enrolled and unlocked" : "unlocked")
                    + " as \(result.mappedDevice) "
                    + "(LUKS \(result.uuid))")
            try Console.timed("mount") { () throws(BootError) in
                do throws(SystemError) { try Mounts.mountVolume(result.mappedDevice, at: config.mountPoint) } catch {
                    throw BootError(
                        stage: .mount, cause: error.description,
                        next: "load ext4 (with crc16, mbcache, jbd2, crc32c_generic); a volume whose first boot "
                            + "stopped before mke2fs has no filesystem")
                }
            }
            // The filesystem is made and mounted (and, with integrity, every sector wiped): only now is the volume
            // ready, and never formatted again.
            try stage.markReady(result)
            for line in try Console.timed("network", { () throws(BootError) in try Network.configure(config) }) {
                Console.say("vhsm-init: network \(line)")
            }
            Console.say("vhsm-init: ready after \(Monotonic.milliseconds(Monotonic.now() - start)) ms")
            try handOff(config, volume: result, device: attestation.device)
        } catch {
            for line in error.lines { Console.say(line) }
            PowerControl.perform(failureAction)
        }
    }

    /// The power-cut test's last point: once the service has written to the volume (a name other than lost+found
    /// in the mount point), half a second later.
    private static func firstWritesWatch(_ mountPoint: String) -> () -> Void {
        var firstSeen: Duration?
        return {
            if let firstSeen {
                if Monotonic.now() - firstSeen >= .milliseconds(500) { PowerCut.at("vhsmd-first-writes") }
            } else if let names = try? Files.list(mountPoint), names.contains(where: { $0 != "lost+found" }) {
                firstSeen = Monotonic.now()
            }
        }
    }

    private func loadConfig() throws(BootError) -> BootConfig {
        let next = "fix \(configPath) or the vhsm.* kernel parameters (check with vhsm-init --check-config)"
        do throws(ConfigError) {
            let file: [UInt8]?
            do throws(SystemError) { file = try Files.read(configPath) } catch  where error.errno == ENOENT {
                file = nil
            } catch {
                throw ConfigError.unreadable(path: configPath, reason: error.reason)
            }
            // The bytes, split as the kernel splits them; UTF-8 is decoded per parameter afterwards.
            let commandLine: [UInt8]
            do throws(SystemError) { commandLine = try Files.read("/proc/cmdline") } catch {
                throw ConfigError.unreadable(path: "/proc/cmdline", reason: error.reason)
            }
            let config = try BootConfig.load(
                file: file, filePath: configPath, commandLine: KernelCommandLine(bytes: commandLine))
            try config.validate(emulatorAvailable: emulatorAvailable)
            return config
        } catch {
            throw BootError(stage: .config, cause: error.description, next: next)
        }
    }

    private func loadModules(_ config: BootConfig) throws(BootError) {
        let release: String
        do throws(SystemError) { release = try ModuleLoader.kernelRelease() } catch {
            throw BootError(stage: .modules, cause: error.description, next: "uname(2) failed")
        }
        let loader = ModuleLoader()
        do throws(SystemError) { try ModuleLoader.disableKernelModprobe() } catch {
            Console.say("vhsm-init: cannot clear /proc/sys/kernel/modprobe: \(error.reason)")
        }
        let index = try loader.index(release: release)
        let requested = config.effectiveModules
        let optional = Set(requested.filter { $0.hasSuffix("?") }.map { ModuleIndex.normalise(String($0.dropLast())) })
        let steps: [ModuleIndex.Step]
        do throws(ModuleError) { steps = try index.plan(requested) } catch {
            throw BootError(
                stage: .modules, cause: error.description,
                next: "pack the module into the initramfs under /lib/modules/\(release) or remove it from modules")
        }
        var loaded: [String] = []
        var notes: [String] = []
        for step in steps {
            let outcome: ModuleLoader.Outcome
            do throws(ModuleError) {
                let name: String
                switch step {
                case .load(let moduleName, _), .builtin(let moduleName), .absent(let moduleName): name = moduleName
                }
                outcome = try loader.perform(step, release: release, optional: optional.contains(name))
                switch outcome {
                case .loaded: loaded.append(name)
                case .alreadyLoaded, .builtin: break
                case .absent: notes.append("\(name) absent")
                case .skipped(let reason): notes.append("\(name) skipped: \(reason)")
                }
            } catch {
                throw BootError(
                    stage: .modules, cause: error.description,
                    next: "the modules must come from the guest kernel's own build (\(release)); see dmesg")
            }
        }
        Console.say("vhsm-init: modules loaded: \(loaded.joined(separator: " "))")
        if !notes.isEmpty { Console.say("vhsm-init: modules: \(notes.joined(separator: "; "))") }
    }

    private func handOff(
        _ config: BootConfig, volume result: VolumeStage<Volume>.Result, device: any GuestDevice
    ) throws(BootError) -> Never {
        switch config.handoff.mode {
        case .switchRoot:
            try SwitchRoot.run(config, volumeIntegrity: result.integrity)
        case .supervise:
            PowerControl.routeCtrlAltDelToSignal()
            var launch = try Console.timed("handoff") { () throws(BootError) in
                try ServiceStart.prepare(config, device: device, prepareService: prepareService)
            }
            var supervisor = Supervisor(config, launch: launch)
            if PowerCut.isArmed("vhsmd-first-writes") { supervisor.tick = Self.firstWritesWatch(config.mountPoint) }
            // The supervisor holds the only reference to the handed bytes, and zeroes them in place when it returns.
            launch.descriptorContents = nil
            let outcome = supervisor.run()
            switch outcome {
            case .shutdown:
                Shutdown.teardown(config, deactivate: { try volume.deactivate(name: config.mapperName) })
                PowerControl.powerOff()
            case .gaveUp(let error):
                for line in error.lines { Console.say(line) }
                Shutdown.teardown(config, deactivate: { try volume.deactivate(name: config.mapperName) })
                PowerControl.perform(config.failureAction)
            }
        }
    }
}
