import Foundation
import Synchronization
import Testing

@testable import KeyService

/// vhsmd rotates transit keys whose newest version is older than their `auto_rotate_period`, as Vault does.
@Suite struct TransitAutoRotationTests {
    typealias Server = TransitStoreTests.Server

    /// The lines an auto-rotation reported.
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
    }

    /// An auto-rotation of `server` whose clock stands at `now` (Unix nanoseconds), reporting into `lines`.
    static func rotation(
        _ server: Server, now: Int64, interval: Duration = .seconds(60), lines: Lines
    )
        -> TransitAutoRotation
    {
        TransitAutoRotation(
            runtime: server.core.runtime, interval: interval, now: { now },
            report: { line, _ in lines.lines.withLock { $0.append(line) } })
    }

    @Test func keysPastTheirAutoRotatePeriodAreRotatedOnce() async throws {
        let server = try Server()
        _ = try await server.call(.update, "transit/keys/due", ["auto_rotate_period": .string("1h")])
        _ = try await server.call(.update, "transit/keys/never")
        _ = try await server.call(.update, "transit/keys/daily", ["auto_rotate_period": .string("24h")])
        // An imported key that does not allow rotation is left alone, as Vault does.
        _ = try server.store.modify("imported") { _ in
            var key = try TransitKey.create(name: "imported", options: .init(autoRotatePeriod: 3600))
            key.config.importedKey = true
            return (.put(key), ())
        }
        // Vault's rule: 0 disables, else at least an hour.
        await #expect(throws: VaultError.self) {
            try await server.call(.update, "transit/keys/due/config", ["auto_rotate_period": .string("30m")])
        }
        // The due key is in the cache; the sweep must not leave it stale there.
        #expect(try server.onLoop(.read, "transit/keys/due")?.data?["latest_version"] == .int(1))

        let lines = Lines()
        let created = TransitTime.now()
        // Before the hour, nothing.
        #expect(Self.rotation(server, now: created, lines: lines).sweep()["transit/"] == TransitStore.RotationSweep())
        let later = created + 3_601 * 1_000_000_000
        let sweep = Self.rotation(server, now: later, lines: lines).sweep()
        #expect(sweep["transit/"]?.rotated == ["due": 2])
        #expect(sweep["transit/"]?.failed == [:])
        #expect(lines.all == ["vhsmd: transit auto-rotation: rotated transit/keys/due to version 2"])
        #expect(try server.onLoop(.read, "transit/keys/due")?.data?["latest_version"] == .int(2))
        let encrypted = try #require(
            try server.onLoop(.update, "transit/encrypt/due", ["plaintext": .string("aGk=")]))
        #expect(encrypted.data?["key_version"] == .int(2))
        // The new version was made at the sweep's time: not due again within the hour.
        #expect(
            Self.rotation(server, now: later + 60 * 1_000_000_000, lines: lines).sweep()["transit/"]?.rotated == [:])
        for name in ["never", "daily", "imported"] {
            #expect(try await server.call(.read, "transit/keys/\(name)").data?["latest_version"] == .int(1))
        }
    }

    /// The service sweeps on its own every interval, until its task is cancelled.
    @Test func theSchedulerRotatesOnItsInterval() async throws {
        let server = try Server()
        _ = try await server.call(.update, "transit/keys/due", ["auto_rotate_period": .string("1h")])
        let lines = Lines()
        // The clock moves a day at every reading, so the key is due at every sweep.
        let readings = Mutex(Int64(0))
        let start = TransitTime.now()
        let service = TransitAutoRotation(
            runtime: server.core.runtime, interval: .milliseconds(20),
            now: {
                readings.withLock {
                    $0 += 1; return start + $0 * 86_400 * 1_000_000_000
                }
            },
            report: { line, _ in lines.lines.withLock { $0.append(line) } })
        let running = Task { try await service.run() }
        var latest: JSONValue?
        for _ in 0..<1_500 {
            latest = try await server.call(.read, "transit/keys/due").data?["latest_version"]
            if case .int(let version)? = latest, version >= 3 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        running.cancel()
        try await running.value
        guard case .int(let version)? = latest else {
            Issue.record("no latest_version: \(String(describing: latest))")
            return
        }
        #expect(version >= 3)
        #expect(lines.all.starts(with: ["vhsmd: transit auto-rotation: rotated transit/keys/due to version 2"]))
    }
}
