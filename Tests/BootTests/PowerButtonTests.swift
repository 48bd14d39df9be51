import Testing

@testable import Boot

@Suite struct PowerButtonTests {
    /// One `struct input_event` as the kernel writes it on x86-64.
    static func event(type: UInt16, code: UInt16, value: Int32, seconds: Int64 = 1_700_000_000) -> [UInt8] {
        func bytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
            (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        }
        return bytes(seconds) + bytes(Int64(123_456)) + bytes(type) + bytes(code) + bytes(value)
    }

    @Test func decodesTheTwentyFourByteRecord() throws {
        let event = try #require(PowerButton.InputEvent(bytes: Self.event(type: 1, code: 116, value: 1)))
        #expect(event.seconds == 1_700_000_000)
        #expect(event.microseconds == 123_456)
        #expect(event.type == 1 && event.code == 116 && event.value == 1)
        #expect(event.isPowerPress)
        #expect(PowerButton.InputEvent(bytes: [UInt8](repeating: 0, count: 16)) == nil)
    }

    @Test func onlyAKeyPowerPressCounts() {
        #expect(!PowerButton.InputEvent(bytes: Self.event(type: 1, code: 116, value: 0))!.isPowerPress)
        #expect(!PowerButton.InputEvent(bytes: Self.event(type: 1, code: 116, value: 2))!.isPowerPress)
        #expect(!PowerButton.InputEvent(bytes: Self.event(type: 1, code: 114, value: 1))!.isPowerPress)
        #expect(!PowerButton.InputEvent(bytes: Self.event(type: 0, code: 0, value: 0))!.isPowerPress)
        #expect(!PowerButton.InputEvent(bytes: Self.event(type: 1, code: 116, value: -1))!.isPowerPress)
    }

    @Test func aReadOfSeveralRecordsFindsThePress() {
        let sync = Self.event(type: 0, code: 0, value: 0)
        let press = Self.event(type: 1, code: 116, value: 1)
        let release = Self.event(type: 1, code: 116, value: 0)
        #expect(PowerButton.containsPress(press + sync + release + sync))
        #expect(PowerButton.containsPress(sync + press))
        #expect(!PowerButton.containsPress(release + sync))
        #expect(!PowerButton.containsPress(Array(press.prefix(20))))
        #expect(!PowerButton.containsPress([]))
    }

    @Test func devicesAreFoundByTheirSysfsName() throws {
        let sys = try TemporaryDirectory()
        try sys.write("Power Button\n", to: "event0/device/name")
        try sys.write("AT Translated Set 2 keyboard\n", to: "event1/device/name")
        try sys.write("Power Button\n", to: "event2/device/name")
        try sys.write("Power Button\n", to: "input0/name")
        try sys.makeDirectory("event3/device")
        #expect(PowerButton.devices(classDirectory: sys.path) == ["/dev/input/event0", "/dev/input/event2"])
        #expect(PowerButton.devices(classDirectory: sys.path + "/missing").isEmpty)
    }
}
