import Foundation
import FuzzTargets

// `vhsm-fuzz`: every fuzz target in one libFuzzer binary (one sanitized link instead of one per target). libFuzzer's
// own `main` runs; the target is chosen by VHSM_FUZZ_TARGET before the first input:
//
//     vhsm-fuzz list                   the targets, one per line: name, tab, summary
//     vhsm-fuzz seeds TARGET DIR       writes TARGET's seed corpus (from ../shared/testdata) into DIR
//     VHSM_FUZZ_TARGET=TARGET vhsm-fuzz [libFuzzer flags…] [CORPUS…]

/// The target libFuzzer drives: set in `LLVMFuzzerInitialize`, before any input, and never changed afterwards.
nonisolated(unsafe) private var selected: FuzzTarget?

@_cdecl("LLVMFuzzerInitialize")
public func fuzzerInitialize(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>
) -> Int32 {
    let arguments = (0..<Int(argc.pointee)).map { String(cString: argv.pointee[$0]!) }
    let usage = "usage: vhsm-fuzz list | seeds TARGET DIR | VHSM_FUZZ_TARGET=TARGET vhsm-fuzz [libFuzzer arguments]"
    switch arguments.dropFirst().first {
    case "list":
        for target in FuzzTargets.all { print("\(target.name)\t\(target.summary)") }
        exit(0)
    case "seeds":
        guard arguments.count == 4 else { fail(usage) }
        writeSeeds(find(arguments[2]), into: URL(fileURLWithPath: arguments[3]))
        exit(0)
    default:
        guard let name = ProcessInfo.processInfo.environment["VHSM_FUZZ_TARGET"] else { fail(usage) }
        let target = find(name)
        do { try target.prepare() } catch { fail("vhsm-fuzz: \(error.description)") }
        selected = target
        return 0
    }
}

/// One input: a finding aborts (libFuzzer saves the input as a crash artifact and prints the message).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do { try selected!.run(input) } catch { fatalError(error.description) }
    return 0
}

private func writeSeeds(_ target: FuzzTarget, into directory: URL) {
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let seeds = try target.seeds(.default)
        for (index, seed) in seeds.enumerated() {
            try Data(seed).write(to: directory.appendingPathComponent(String(format: "seed-%03d", index)))
        }
        print("\(target.name): \(seeds.count) seeds in \(directory.path)")
    } catch {
        fail("vhsm-fuzz: the seeds of '\(target.name)' could not be written to \(directory.path): \(error)")
    }
}

private func find(_ name: String) -> FuzzTarget {
    guard let target = FuzzTargets.named(name) else {
        fail("vhsm-fuzz: no target '\(name)'; the targets are \(FuzzTargets.all.map(\.name).joined(separator: ", "))")
    }
    return target
}

private func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data((message + "\n").utf8))
    exit(2)
}
