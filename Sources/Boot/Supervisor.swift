import CLinux
import Glibc

/// DESIGN §3 step 9, supervise: PID 1 runs the service, reaps every child (orphans are re-parented to it),
/// restarts the service with `RestartPolicy`, and turns SIGTERM, SIGINT (Ctrl-Alt-Del), SIGUSR2, SIGPWR or a
/// press of the ACPI power button into an orderly stop of the service. It returns once the service and every
/// other process are gone; the caller unmounts, closes the mapping and powers off.
struct Supervisor {
    enum Outcome: Equatable {
        /// An orderly shutdown was asked for, for this reason.
        case shutdown(reason: String)
        /// The service failed too often (or could not be started); the failure action applies.
        case gaveUp(BootError)
    }

    var service: String
    var arguments: [String]
    var environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/"]
    var policy: RestartPolicy
    var stopTimeout: Duration
    /// The service runs as `handoff.user` with no_new_privs and the seccomp filter.
    var confinement: Spawn.Confinement
    /// What the service reads on its inherited descriptor at every start (a fresh pipe each time); zeroed when
    /// `run` returns.
    var descriptorContents: [UInt8]?
    /// Called on every turn of the loop, at least every 100 ms while set (the power-cut test's watch).
    var tick: (() -> Void)?

    init(_ config: BootConfig, launch: ServiceStart.Launch? = nil) {
        service = config.handoff.service
        arguments = config.handoff.arguments + (launch?.arguments ?? [])
        policy = RestartPolicy(config.restart)
        stopTimeout = .milliseconds(config.handoff.stopTimeoutMilliseconds)
        confinement = Spawn.Confinement(user: config.handoff.user)
        descriptorContents = launch?.descriptorContents
    }

    private struct Child {
        var pid: pid_t
        var started: Duration
    }

    static let handledSignals: [Int32] = [SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2, SIGPWR]

    mutating func run() -> Outcome {
        defer {
            descriptorContents?.withUnsafeMutableBytes {
                if let base = $0.baseAddress { explicit_bzero(base, $0.count) }
            }
        }
        let signalFD = Self.handledSignals.withUnsafeBufferPointer {
            clinux_block_signals_to_fd($0.baseAddress, Int32($0.count))
        }
        guard signalFD >= 0 else {
            return .gaveUp(
                BootError(
                    stage: .supervise, cause: "signalfd: \(SystemError.describe(-signalFD))",
                    next: "the kernel needs CONFIG_SIGNALFD"))
        }
        defer { close(signalFD) }
        let buttons = openPowerButtons()
        defer { for fd in buttons { close(fd) } }

        var child: Child?
        var restartAt: Duration? = Monotonic.now()
        var lastExit = ""
        while true {
            if child == nil, let at = restartAt, Monotonic.now() >= at {
                restartAt = nil
                do throws(SystemError) {
                    let pid = try startService()
                    child = Child(pid: pid, started: Monotonic.now())
                    Console.say(
                        "vhsm-init: started \(service) (pid \(pid)) as uid:gid \(confinement.user.map { "\($0)" } ?? "0:0")"
                            + (confinement.seccomp ? ", no_new_privs, seccomp filter" : "")
                            + (descriptorContents == nil ? "" : ", handoff on fd \(confinement.target)"))
                } catch {
                    lastExit = error.description
                    Console.say("vhsm-init: \(error)")
                    if let outcome = decide(runTime: .zero, lastExit: lastExit, restartAt: &restartAt) {
                        return outcome
                    }
                }
            }
            var descriptors = [pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
            descriptors += buttons.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            var timeout: Int32 = -1
            if child == nil, let at = restartAt {
                timeout = max(0, Int32(clamping: Monotonic.milliseconds(at - Monotonic.now()) + 1))
            }
            if let tick {
                tick()
                timeout = timeout < 0 ? 100 : min(timeout, 100)
            }
            _ = poll(&descriptors, nfds_t(descriptors.count), timeout)

            while true {
                let signal = clinux_read_signal(signalFD)
                guard signal > 0 else { break }
                switch signal {
                case SIGCHLD:
                    for (pid, status) in Self.reap() where pid == child?.pid {
                        let runTime = Monotonic.now() - child!.started
                        child = nil
                        lastExit = "\(service) \(status) after \(Monotonic.milliseconds(runTime)) ms"
                        Console.say("vhsm-init: \(lastExit)")
                        if let outcome = decide(runTime: runTime, lastExit: lastExit, restartAt: &restartAt) {
                            return outcome
                        }
                    }
                case SIGHUP, SIGUSR1:
                    if let pid = child?.pid { kill(pid, signal) }
                default:
                    let name = WaitStatus.signalNames[signal] ?? "signal \(signal)"
                    Console.say("vhsm-init: shutdown: \(name)")
                    stop(child?.pid, signal: signal == SIGINT ? SIGINT : SIGTERM, signalFD: signalFD)
                    return .shutdown(reason: name)
                }
            }
            for fd in buttons where Self.readPress(fd) {
                Console.say("vhsm-init: shutdown: power button")
                stop(child?.pid, signal: SIGTERM, signalFD: signalFD)
                return .shutdown(reason: "power button")
            }
        }
    }

    /// Starts the service confined; with descriptor contents, on a new pipe whose read end it inherits.
    private func startService() throws(SystemError) -> pid_t {
        guard let contents = descriptorContents else {
            return try Spawn.startConfined(
                service, arguments: arguments, environment: environment, confinement: confinement)
        }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw SystemError("pipe", "the handoff of \(service)") }
        defer { close(ends[0]) }
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        // At most a few KiB: it fits in the pipe, so the write never waits for the reader.
        var written = 0
        while written < contents.count {
            let count = contents[written...].withUnsafeBytes { write(ends[1], $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                let error = SystemError("write", "the handoff pipe of \(service)")
                close(ends[1])
                throw error
            }
            written += count
        }
        close(ends[1])
        var confinement = confinement
        confinement.inherited = ends[0]
        return try Spawn.startConfined(
            service, arguments: arguments, environment: environment, confinement: confinement)
    }

    /// Applies the restart policy to an exit; an outcome when the supervisor gives up.
    private mutating func decide(runTime: Duration, lastExit: String, restartAt: inout Duration?) -> Outcome? {
        switch policy.serviceExited(after: runTime) {
        case .restart(let delay):
            Console.say("vhsm-init: restarting \(service) in \(Monotonic.milliseconds(delay)) ms")
            restartAt = Monotonic.now() + delay
            return nil
        case .giveUp(let failures):
            return .gaveUp(
                BootError(
                    stage: .supervise,
                    cause: "\(service) failed \(failures) times in a row, each within "
                        + "\(Monotonic.milliseconds(policy.fastRun)) ms (last: \(lastExit))",
                    next: "read the service's output above; check handoff.service, handoff.args and the data in "
                        + "the mounted volume"))
        }
    }

    /// Stops the service's process group (`signal`, then SIGKILL after `stopTimeout`), then every other process,
    /// reaping them all.
    private func stop(_ pid: pid_t?, signal: Int32, signalFD: Int32) {
        if let pid {
            let name = WaitStatus.signalNames[signal] ?? "signal \(signal)"
            Console.say("vhsm-init: shutdown: stopping \(service) (pid \(pid), \(name))")
            if kill(-pid, signal) != 0 { kill(pid, signal) }
            if !Self.waitForExit(pid, within: stopTimeout, signalFD: signalFD) {
                Console.say(
                    "vhsm-init: shutdown: \(service) still running after \(Monotonic.milliseconds(stopTimeout)) ms, SIGKILL"
                )
                if kill(-pid, SIGKILL) != 0 { kill(pid, SIGKILL) }
                _ = Self.waitForExit(pid, within: .seconds(5), signalFD: signalFD)
            }
        }
        Console.say("vhsm-init: shutdown: stopping remaining processes")
        kill(-1, SIGKILL)
        _ = Self.waitForExit(nil, within: .seconds(2), signalFD: signalFD)
    }

    /// Reaps until `pid` (or, for nil, every child) is gone or the time is up. True when it is gone.
    private static func waitForExit(_ pid: pid_t?, within limit: Duration, signalFD: Int32) -> Bool {
        let deadline = Monotonic.now() + limit
        while true {
            for (reaped, _) in reap() where reaped == pid { return true }
            if pid == nil, !hasChildren() { return true }
            let remaining = deadline - Monotonic.now()
            if remaining <= .zero { return false }
            var descriptor = pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&descriptor, 1, Int32(clamping: Monotonic.milliseconds(remaining) + 1))
            while clinux_read_signal(signalFD) > 0 {}
        }
    }

    /// waitpid(-1, WNOHANG) until nothing more has exited.
    private static func reap() -> [(pid_t, WaitStatus)] {
        var reaped: [(pid_t, WaitStatus)] = []
        var status: Int32 = 0
        while true {
            let pid = waitpid(-1, &status, WNOHANG)
            guard pid > 0 else { return reaped }
            reaped.append((pid, WaitStatus(rawValue: status)))
        }
    }

    private static func hasChildren() -> Bool {
        var info = siginfo_t()
        return waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0
    }

    private func openPowerButtons() -> [Int32] {
        let paths = PowerButton.devices()
        let fds = paths.compactMap { path -> Int32? in
            let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            return fd >= 0 ? fd : nil
        }
        if fds.isEmpty {
            Console.say(
                "vhsm-init: no ACPI power button (modules button, evdev); shut down with SIGTERM or SIGPWR to PID 1")
        } else {
            Console.say("vhsm-init: power button: \(paths.joined(separator: ", "))")
        }
        return fds
    }

    /// Drains a power-button fd; true when a press arrived.
    private static func readPress(_ fd: Int32) -> Bool {
        var pressed = false
        var buffer = [UInt8](repeating: 0, count: PowerButton.InputEvent.byteCount * 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard count > 0 else { return pressed }
            if PowerButton.containsPress(Array(buffer[0..<count])) { pressed = true }
        }
    }
}
