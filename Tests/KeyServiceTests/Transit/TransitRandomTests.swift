import Testing

@testable import KeyService

@Suite struct TransitRandomTests {
    @Test func drawsHaveTheRequestedLengthAndNeverRepeat() {
        #expect(TransitRandom.bytes(0).isEmpty)
        // Enough 12-byte draws to refill the 4 KiB pool several times over; 96-bit values never collide.
        var seen = Set<[UInt8]>()
        for _ in 0..<2000 {
            let nonce = TransitRandom.bytes(12)
            #expect(nonce.count == 12)
            seen.insert(nonce)
        }
        #expect(seen.count == 2000)
    }

    @Test func drawsStraddlingARefillAndLargeDrawsAreFilled() {
        // 1,000-byte draws cross the pool's end every few calls; 5,000 bytes bypass the pool. A byte that was
        // never filled would stay zero: in 5,000 random bytes about 20 zeros are expected, never hundreds.
        for _ in 0..<10 {
            let draw = TransitRandom.bytes(1000)
            #expect(draw.count == 1000 && draw.filter { $0 == 0 }.count < 40)
        }
        let large = TransitRandom.bytes(5000)
        #expect(large.count == 5000 && large.filter { $0 == 0 }.count < 80)
        #expect(TransitRandom.bytes(5000) != large)
    }

    @Test func concurrentDrawsAreDistinct() async {
        let draws = await withTaskGroup(of: [[UInt8]].self) { group in
            for _ in 0..<8 { group.addTask { (0..<200).map { _ in TransitRandom.bytes(16) } } }
            var all: [[UInt8]] = []
            for await batch in group { all += batch }
            return all
        }
        #expect(draws.count == 1600 && Set(draws).count == 1600)
    }
}
