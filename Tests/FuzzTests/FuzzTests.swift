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
