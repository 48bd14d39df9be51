import Foundation
import FuzzTargets
import Testing

/// The fuzz targets' entry points in `swift test`: every seed, and every committed finding
/// (`FuzzRegressions/<target>/<input>`), goes through exactly the `run` that libFuzzer drives.
@Suite struct FuzzTests {
    static let regressions: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("FuzzRegressions")

    /// `target/file` for every committed input.
    static let findings: [String] = {
        let manager = FileManager.default
        let targets = (try? manager.contentsOfDirectory(atPath: regressions.path)) ?? []
        return targets.sorted().flatMap { target in
            ((try? manager.contentsOfDirectory(atPath: regressions.appendingPathComponent(target).path)) ?? [])
                .filter { !$0.hasPrefix(".") }.sorted().map { "\(target)/\($0)" }
        }
    }()

    @Test(arguments: FuzzTargets.all.map(\.name))
    func seedsRunClean(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let seeds = try target.seeds(.default)
        #expect(!seeds.isEmpty, "target \(name) has no seeds")
        for seed in seeds { try target.run(seed) }
    }

    @Test func everyTargetHasADistinctName() {
        #expect(Set(FuzzTargets.all.map(\.name)).count == FuzzTargets.all.count)
    }

    @Test func findingsAreCommitted() {
        #expect(!Self.findings.isEmpty, "no committed fuzz findings under \(Self.regressions.path)")
    }

    /// Each committed input names its target by its folder; it must now pass that target's checks.
    @Test(arguments: findings)
    func committedFindingPasses(_ path: String) throws {
        let name = String(path.prefix { $0 != "/" })
        let target = try #require(FuzzTargets.named(name), "FuzzRegressions/\(name) is not a fuzz target")
        let input = try Data(contentsOf: Self.regressions.appendingPathComponent(path))
        try target.run(Array(input))
    }
}

/// The fuzz smoke run of `make test`: every target on its seeds mutated by a fixed-seed generator (bit flips,
/// interesting bytes, truncation, duplication, insertion, splicing of two seeds), through the same `run`. It has no
/// coverage guidance (libFuzzer's build takes longer than `make test` may; `make fuzz` runs that), but it drives every
/// target past its seeds in every run. `VHSM_FUZZ_SMOKE_SEED` and `VHSM_FUZZ_SMOKE_INPUTS` explore further.
@Suite struct FuzzSmokeTests {
    static let inputs = Int(ProcessInfo.processInfo.environment["VHSM_FUZZ_SMOKE_INPUTS"] ?? "") ?? 300
    static let seed = UInt64(ProcessInfo.processInfo.environment["VHSM_FUZZ_SMOKE_SEED"] ?? "") ?? 0x7668_736d_6675_7a7a

    @Test(arguments: FuzzTargets.all.map(\.name))
    func mutatedSeedsRunClean(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        try target.prepare()
        let seeds = try target.seeds(.default)
        try #require(!seeds.isEmpty, "target \(name) has no seeds")
        var generator = SplitMix64(
            state: Self.seed ^ UInt64(truncatingIfNeeded: name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }))
        for index in 0..<Self.inputs {
            let input = Mutator.mutate(
                seeds[index % seeds.count], other: seeds[Int(generator.next() % UInt64(seeds.count))], &generator)
            do { try target.run(input) } catch {
                let hex = input.prefix(512).map { String(format: "%02x", $0) }.joined()
                let message =
                    "\(error) on mutated input \(index) (seed \(Self.seed)): commit it under FuzzRegressions/\(name)/ "
                    + "as the bytes \(hex)"
                Issue.record(Comment(rawValue: message))
                return
            }
        }
    }
}

/// A small deterministic random generator (SplitMix64), so that a smoke failure replays from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// libFuzzer's simplest mutations, one to four per input.
enum Mutator {
    static let interesting: [UInt8] = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0x20, 0x22, 0x5C, 0x7B, 0x5B, 0x0A, 0x3D]

    static func mutate(_ seed: [UInt8], other: [UInt8], _ g: inout SplitMix64) -> [UInt8] {
        var bytes = seed
        for _ in 0...Int(g.next() % 4) {
            let position = bytes.isEmpty ? 0 : Int(g.next() % UInt64(bytes.count))
            switch g.next() % 6 {
            case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1 << (g.next() % 8))
            case 1 where !bytes.isEmpty: bytes[position] = interesting[Int(g.next() % UInt64(interesting.count))]
            case 2: bytes = Array(bytes.prefix(position))
            case 3 where !bytes.isEmpty:
                let length = min(bytes.count - position, 1 + Int(g.next() % 64))
                bytes.insert(contentsOf: bytes[position..<position + length], at: position)
            case 4:
                bytes.insert(
                    contentsOf: (0..<(1 + Int(g.next() % 8))).map { _ in UInt8(truncatingIfNeeded: g.next()) },
                    at: position)
            default:
                let cut = other.isEmpty ? 0 : Int(g.next() % UInt64(other.count))
                bytes = Array(bytes.prefix(position)) + other[cut...]
            }
        }
        return bytes
    }
}
