import Boot
import Foundation

/// vhsm-init's configuration: the kernel command line (`/proc/cmdline`) and `init.json`, both part of the launch
/// measurement but written by whoever builds the image and the host's launch command.
enum BootTargets {
    /// The input: a u16 (little-endian) length, then that many bytes of command line, then the rest as init.json
    /// (absent when the first byte of the rest is 0xFF, as when there is no file in the initramfs).
    static func split(_ input: [UInt8]) -> (commandLine: [UInt8], file: [UInt8]?) {
        guard input.count >= 2 else { return (input, nil) }
        let length = min(Int(input[0]) | Int(input[1]) << 8, input.count - 2)
        let commandLine = Array(input[2..<2 + length])
        let rest = Array(input[(2 + length)...])
        return (commandLine, rest.first == 0xFF ? nil : rest)
    }

    /// `ConfigCheck` (what `--check-config` and PID 1 run) on a command line and a file. Checks: the command line
    /// splits exactly as the kernel's own `next_arg()` splits it (a transcription of lib/cmdline.c below); the
    /// outcome is deterministic; an accepted configuration's effective JSON, read back as init.json with an empty
    /// command line, is accepted with the same effective configuration.
    static let cmdlineConfig = FuzzTarget(
        name: "cmdline-config",
        summary: "KernelCommandLine against the kernel's next_arg(); init.json + vhsm.* through ConfigCheck",
        run: { (input: [UInt8]) throws(FuzzFinding) in
            let name = "cmdline-config"
            let (commandLine, file) = split(input)
            let ours = ConfigCheck.parameters(commandLine)
            let kernel = KernelNextArg.parameters(commandLine)
            guard ours.map(\.name) == kernel.map(\.name), ours.map(\.value) == kernel.map(\.value) else {
                throw FuzzFinding(
                    name, "split \(commandLine) into \(ours), the kernel's next_arg() into \(kernel)")
            }
            for emulator in [false, true] {
                let check = ConfigCheck(file: file, commandLine: commandLine, emulatorAvailable: emulator)
                guard ConfigCheck(file: file, commandLine: commandLine, emulatorAvailable: emulator) == check else {
                    throw FuzzFinding(name, "the same configuration read twice gives different outcomes")
                }
                guard let effective = check.effective else { continue }
                let again = ConfigCheck(file: Array(effective.utf8), commandLine: [], emulatorAvailable: emulator)
                guard again.accepted, again.effective == effective else {
                    throw FuzzFinding(
                        name,
                        "the effective configuration read back is \(again.refusal ?? "different"): \(effective)")
                }
            }
        },
        seeds: { (_: TestData) throws(FuzzFinding) in
            var files: [[UInt8]?] = [nil]
            for name in ["init.json", "init-emulator.json"] {
                let path = checkout.appendingPathComponent("initramfs/\(name)").path
                guard let contents = FileManager.default.contents(atPath: path) else {
                    throw FuzzFinding("cmdline-config", "seed file \(path) is missing")
                }
                files.append(Array(contents))
            }
            // The command lines of check-qemu.sh's scenarios (image/manifest's default, then vhsm.* on top).
            let base = "console=ttyS0 panic=-1"
            let commandLines = [
                "", base, "\(base) vhsm.sael=image", "\(base) vhsm.seal=platform vhsm.volume=/dev/vdb",
                "\(base) vhsm.seal=platform vhsm.volume=UUID=5B4C1A3E-7F0E-4D2A-9C61-3E8F0A1B2C3D",
                "\(base) vhsm.integrity",
                "\(base) vhsm.allow-smt=0 vhsm.on-failure=reboot vhsm.min_tcb=0300000000000873",
                "\(base) vhsm.handoff=switch_root vhsm.handoff.root=/dev/vdb vhsm.handoff.root_hash="
                    + String(repeating: "ab", count: 32)
                    + " vhsm.handoff.root_salt=- vhsm.handoff.root_data_blocks=256",
                "\(base) \"vhsm.handoff.args=--dev --port 8200\" vhsm.network=none vhsm.modules=a,b-c -- vhsm.seal=x",
                "\(base) vhsm.handoff.args=\"--config /etc/vhsm/vhsmd.json\" vhsm.restart.max_ms=100\n",
            ]
            var seeds: [[UInt8]] = []
            for (index, line) in commandLines.enumerated() {
                let bytes = Array(line.utf8)
                let file = files[index % files.count]
                seeds.append([UInt8(bytes.count & 0xFF), UInt8(bytes.count >> 8)] + bytes + (file ?? [0xFF]))
            }
            return seeds
        })

    /// The checkout this file was compiled in (initramfs/ holds the project's own init.json files).
    static let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
}

/// The kernel's `next_arg()` and `parse_args()` loop (lib/cmdline.c, kernel/params.c, Linux 6.1), transcribed
/// statement by statement on a NUL-terminated copy of the bytes, with the kernel's `isspace()` (lib/ctype.c:
/// HT, LF, VT, FF, CR, space and 0xA0). The command line is a C string: it ends at its first NUL.
enum KernelNextArg {
    static func isspace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) || byte == 0xA0 }

    static func parameters(_ input: [UInt8]) -> [(name: String, value: String?)] {
        var args = Array(input.prefix { $0 != 0 }) + [0]
        var out: [(name: String, value: String?)] = []
        var position = skipSpaces(args, 0)
        while args[position] != 0 {
            let (param, value, next) = nextArg(&args, position)
            if value == nil, cString(args, param) == Array("--".utf8) { break }
            out.append(
                (
                    String(decoding: cString(args, param), as: UTF8.self),
                    value.map { String(decoding: cString(args, $0), as: UTF8.self) }
                ))
            position = next
        }
        return out
    }

    static func skipSpaces(_ args: [UInt8], _ index: Int) -> Int {
        var index = index
        while isspace(args[index]) { index += 1 }
        return index
    }

    static func cString(_ args: [UInt8], _ start: Int) -> [UInt8] { Array(args[start...].prefix { $0 != 0 }) }

    /// `char *next_arg(char *args, char **param, char **val)`: indices instead of pointers.
    static func nextArg(_ args: inout [UInt8], _ start: Int) -> (param: Int, value: Int?, next: Int) {
        var base = start
        var equals = 0
        var inQuote = false
        var quoted = false
        if args[base] == UInt8(ascii: "\"") {
            base += 1
            inQuote = true
            quoted = true
        }
        var i = 0
        while args[base + i] != 0 {
            if isspace(args[base + i]), !inQuote { break }
            if equals == 0, args[base + i] == UInt8(ascii: "=") { equals = i }
            if args[base + i] == UInt8(ascii: "\"") { inQuote.toggle() }
            i += 1
        }
        let param = base
        var value: Int?
        if equals != 0 {
            args[base + equals] = 0
            var val = base + equals + 1
            if args[val] == UInt8(ascii: "\"") {
                val += 1
                if args[base + i - 1] == UInt8(ascii: "\"") { args[base + i - 1] = 0 }
            }
            value = val
        }
        if quoted, i > 0, args[base + i - 1] == UInt8(ascii: "\"") { args[base + i - 1] = 0 }
        let next: Int
        if args[base + i] != 0 {
            args[base + i] = 0
            next = base + i + 1
        } else {
            next = base + i
        }
        return (param, value, skipSpaces(args, next))
    }
}
