public import Foundation
import Synchronization

/// One fuzz target: an attacker-facing parser behind a single entry point, the seeds its corpus starts from, and
/// the oracle its result is checked against. libFuzzer (`vhsm-fuzz`) and `swift test` (FuzzTests) call the same
/// `run`, so a committed finding replays exactly what the fuzzer saw.
public struct FuzzTarget: Sendable {
    public let name: String
    /// What is parsed and what is checked, for `vhsm-fuzz list` and the README's table.
    public let summary: String
    /// Feeds one input. A parser's refusal is a normal outcome; a broken invariant or oracle disagreement throws.
    public let run: @Sendable ([UInt8]) throws(FuzzFinding) -> Void
    /// The starting corpus, built from `../shared/testdata` and the project's own fixtures at run time.
    public let seeds: @Sendable (TestData) throws(FuzzFinding) -> [[UInt8]]
    /// One-time set-up (an emulated chip's RSA keys) before the first input, so that it does not count against
    /// libFuzzer's per-input timeout.
    public let prepare: @Sendable () throws(FuzzFinding) -> Void

    init(
        name: String, summary: String, prepare: @escaping @Sendable () throws(FuzzFinding) -> Void = {},
        run: @escaping @Sendable ([UInt8]) throws(FuzzFinding) -> Void,
        seeds: @escaping @Sendable (TestData) throws(FuzzFinding) -> [[UInt8]]
    ) {
        self.name = name
        self.summary = summary
        self.prepare = prepare
        self.run = run
        self.seeds = seeds
    }
}

/// An input that broke a target's invariant or disagreed with its oracle: a defect to fix, never a refusal.
public struct FuzzFinding: Error, CustomStringConvertible, Sendable {
    public var target: String
    public var message: String
    public init(_ target: String, _ message: String) {
        self.target = target
        self.message = message
    }
    public var description: String { "fuzz target '\(target)': \(message)" }
}

/// `../shared/testdata` beside the checkout (or `VHSM_TESTDATA`). A missing file is an error, never an empty corpus.
public struct TestData: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    /// `VHSM_TESTDATA`, else `../shared/testdata` beside the checkout this file was compiled from.
    public static var `default`: TestData {
        if let override = ProcessInfo.processInfo.environment["VHSM_TESTDATA"] {
            return TestData(root: URL(fileURLWithPath: override))
        }
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return TestData(root: checkout.appendingPathComponent("../shared/testdata").standardized)
    }

    public func read(_ path: String, for target: String) throws(FuzzFinding) -> [UInt8] {
        let url = root.appendingPathComponent(path)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw FuzzFinding(
                target, "seed file \(url.path) is missing: the seeds need ../shared/testdata beside the checkout")
        }
        return Array(data)
    }

    /// Every file in `directory` whose name ends with `suffix`, sorted by name.
    public func files(in directory: String, suffix: String, for target: String) throws(FuzzFinding) -> [[UInt8]] {
        let url = root.appendingPathComponent(directory)
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: url.path) } catch {
            throw FuzzFinding(target, "seed directory \(url.path) cannot be listed: \(error)")
        }
        let matching = names.filter { $0.hasSuffix(suffix) }.sorted()
        guard !matching.isEmpty else {
            throw FuzzFinding(target, "no seed file ending in '\(suffix)' in \(url.path)")
        }
        var out: [[UInt8]] = []
        for name in matching { out.append(try read("\(directory)/\(name)", for: target)) }
        return out
    }
}

/// Every target, most attacker-facing first.
public enum FuzzTargets {
    public static let all: [FuzzTarget] = [
        SNPTargets.report, SNPTargets.reportVerify, SNPTargets.certificate, SNPTargets.certificateTable,
        SNPTargets.idBlock, ServerTargets.listVerb, ClusterTargets.join, ClusterTargets.leaderAdvertisement,
        JSONTargets.vhsmdJSON, JSONTargets.strictJSON,
        ServerTargets.policy, ServerTargets.transitCiphertext, ServerTargets.base64, ServerTargets.duration,
        GuestTargets.emulatorFrames, GuestTargets.snpGuestIoctl, VolumeTargets.luks2Header, BootTargets.cmdlineConfig,
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }
}

/// Input helpers shared by the targets.
enum FuzzInput {
    /// The input as text when it is valid UTF-8 (the parsers of text take `String`; invalid UTF-8 never reaches
    /// them, because the HTTP layer decodes first).
    static func text(_ bytes: [UInt8]) -> String? { String(validating: bytes, as: UTF8.self) }
}

/// A fixture made once per process, under a lock: the fuzzer calls `run` millions of times. A failure is not kept;
/// the next call tries again (and reports again).
final class MadeOnce<Value: Sendable>: Sendable {
    private let made = Mutex<Value?>(nil)

    func value(_ make: () throws(FuzzFinding) -> Value) throws(FuzzFinding) -> Value {
        try made.withLock { made throws(FuzzFinding) -> Value in
            if let made { return made }
            let value = try make()
            made = value
            return value
        }
    }
}
