import Testing

@testable import SNP

@Suite struct HexTests {
    @Test func encodesLowerCaseAndRoundTrips() throws {
        #expect(Hex.encode([0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x09, 0x0A, 0xF0]) == "deadbeef00090af0")
        #expect(Hex.encode([UInt8]()) == "")
        let all = (0...255).map { UInt8($0) }
        #expect(try Hex.decode(Hex.encode(all)) == all)
        // A lazy sequence (no contiguous storage, underestimatedCount 0) encodes the same way.
        #expect(Hex.encode(all.lazy.map { $0 }) == Hex.encode(all))
    }

    @Test func uuidIsTheDashedLowerCaseForm() {
        #expect(Hex.uuid((0..<16).map { UInt8($0) }) == "00010203-0405-0607-0809-0a0b0c0d0e0f")
        #expect(Hex.uuid([UInt8](repeating: 0xFF, count: 16)) == "ffffffff-ffff-ffff-ffff-ffffffffffff")
    }

    @Test func randomUUIDSetsVersion4AndTheRFC9562Variant() {
        let text = Hex.randomUUID(from: [UInt8](repeating: 0xFF, count: 16))
        #expect(text == "ffffffff-ffff-4fff-bfff-ffffffffffff")
        let zero = Hex.randomUUID(from: [UInt8](repeating: 0, count: 16))
        #expect(zero == "00000000-0000-4000-8000-000000000000")
    }
}
