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

    @Test func decodingErrorsCountCharactersAndNameTheOneRefused() throws {
        #expect(try Hex.decode("0xDEADbeef") == [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(try Hex.decode("0X00ff", count: 2) == [0x00, 0xFF])
        // 'é' is two UTF-8 bytes: six characters, the fifth refused (not "an odd number of digits (7)").
        #expect(throws: HexError.notHex(character: "é", position: 5)) { try Hex.decode("0011é2") }
        #expect(
            HexError.notHex(character: "é", position: 5).description
                == "has 'é' at character 5, which is not a hex digit (0-9, a-f)")
        // Positions count the 0x prefix as typed.
        #expect(throws: HexError.notHex(character: "g", position: 5)) { try Hex.decode("0x00g1") }
        #expect(HexError.notHex(character: " ", position: 3).description.hasPrefix("has a space at character 3"))
        #expect(HexError.notHex(character: "\u{200B}", position: 1).description.hasPrefix("has U+200B at character 1"))
        #expect(throws: HexError.oddLength(3)) { try Hex.decode("abc") }
        #expect(throws: HexError.wrongLength(expected: 4, actual: 2)) { try Hex.decode("0011", count: 4) }
        // The README's shortened values are recognised as such.
        for shortened in ["5a5a…5a", "aea0ee1f…b754f0", "0x00...ff"] {
            #expect(throws: HexError.shortened) { try Hex.decode(shortened) }
        }
        #expect(HexError.shortened.description.contains("give the whole value"))
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
