/// The ACPI power button as evdev reports it: `struct input_event` records from the `/dev/input/eventN`
/// whose `/sys/class/input/eventN/device/name` is "Power Button" (drivers/acpi/button.c; needs the `button`
/// and `evdev` modules). QEMU's `system_powerdown` presses it.
enum PowerButton {
    /// `struct input_event` on 64-bit Linux: struct timeval (2 × 8 bytes), u16 type, u16 code, s32 value.
    struct InputEvent: Equatable, Sendable {
        static let byteCount = 24
        /// EV_KEY
        static let keyType: UInt16 = 1
        /// KEY_POWER
        static let powerCode: UInt16 = 116

        var seconds: Int64
        var microseconds: Int64
        var type: UInt16
        var code: UInt16
        var value: Int32

        /// Decodes one record (little-endian, as on x86-64); nil when `bytes` is not 24 long.
        init?(bytes: some Collection<UInt8>) {
            let bytes = Array(bytes)
            guard bytes.count == Self.byteCount else { return nil }
            func integer<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
                (0..<MemoryLayout<T>.size).reversed().reduce(T(0)) {
                    $0 << 8 | T(truncatingIfNeeded: bytes[offset + $1])
                }
            }
            seconds = integer(0, Int64.self)
            microseconds = integer(8, Int64.self)
            type = integer(16, UInt16.self)
            code = integer(18, UInt16.self)
            value = integer(20, Int32.self)
        }

        /// KEY_POWER pressed (value 1; 0 is the release, 2 autorepeat).
        var isPowerPress: Bool { type == Self.keyType && code == Self.powerCode && value == 1 }
    }

    /// True when any whole record in `bytes` is a power-button press.
    static func containsPress(_ bytes: [UInt8]) -> Bool {
        stride(from: 0, through: bytes.count - InputEvent.byteCount, by: InputEvent.byteCount).contains { offset in
            InputEvent(bytes: bytes[offset..<offset + InputEvent.byteCount])?.isPowerPress ?? false
        }
    }

    /// `/dev/input/eventN` for every input device named "Power Button" under `classDirectory`.
    static func devices(classDirectory: String = "/sys/class/input") -> [String] {
        let names = (try? Files.list(classDirectory)) ?? []
        return names.filter { $0.hasPrefix("event") }.filter { entry in
            let name = (try? Files.readText("\(classDirectory)/\(entry)/device/name")) ?? ""
            return name.trimmingSuffix(while: \.isWhitespace) == "Power Button"
        }.map { "/dev/input/\($0)" }
    }
}

extension String {
    func trimmingSuffix(while predicate: (Character) -> Bool) -> String {
        var text = self
        while let last = text.last, predicate(last) { text.removeLast() }
        return text
    }
}
