import ServiceLifecycle

/// Vault's automatic rotation of transit keys (`auto_rotate_period`: 0 disables it, else at least an hour). Every
/// `interval`, every transit mount's keys whose newest version is older than their period are rotated
/// (`TransitStore.rotateDueKeys`), each under the same per-key lock as `keys/:name/rotate`. A service of vhsmd's
/// group: it stops at a graceful shutdown, and does nothing while the store is sealed or not initialised.
struct TransitAutoRotation: Service {
    let runtime: Runtime
    /// How often the keys are checked; a key is rotated at most this long after it became due.
    var interval: Duration = .seconds(60)
    /// Now, in Unix nanoseconds (tests move it).
    var now: @Sendable () -> Int64 = { TransitTime.now() }
    /// Where a line about each rotation goes (`problem` false: standard output), and about each key that could not
    /// be rotated (`problem` true: standard error).
    var report: @Sendable (_ line: String, _ problem: Bool) -> Void = { line, problem in
        if problem { complain(line) } else { announce(line) }
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                sweep()
            }
        }
    }

    /// One pass over every transit mount, by mount path: what was rotated and what could not be.
    @discardableResult
    func sweep() -> [String: TransitStore.RotationSweep] {
        guard let services = runtime.services else { return [:] }
        var sweeps: [String: TransitStore.RotationSweep] = [:]
        for mount in services.mounts.mounted {
            guard let transit = mount.backend as? TransitBackend else { continue }
            let sweep: TransitStore.RotationSweep
            do { sweep = try transit.store.rotateDueKeys(now: now()) } catch {
                report("vhsmd: transit auto-rotation: cannot list the keys of \(mount.path): \(error)", true)
                continue
            }
            for (name, version) in sweep.rotated.sorted(by: { $0.key < $1.key }) {
                report("vhsmd: transit auto-rotation: rotated \(mount.path)keys/\(name) to version \(version)", false)
            }
            for (name, reason) in sweep.failed.sorted(by: { $0.key < $1.key }) {
                report("vhsmd: transit auto-rotation: cannot rotate \(mount.path)keys/\(name): \(reason)", true)
            }
            sweeps[mount.path] = sweep
        }
        return sweeps
    }
}
