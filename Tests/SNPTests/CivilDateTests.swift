import SNP
import Testing

@Suite struct CivilDateTests {
    @Test func knownDates() {
        #expect(CivilDate(year: 1970, month: 1, day: 1).daysSinceEpoch == 0)
        #expect(CivilDate(year: 2000, month: 3, day: 1).daysSinceEpoch == 11_017)
        #expect(CivilDate(year: 2024, month: 2, day: 29).daysSinceEpoch == 19_782)
        #expect(CivilDate(year: 1969, month: 12, day: 31).daysSinceEpoch == -1)
        #expect(CivilDate(daysSinceEpoch: 20_786) == CivilDate(year: 2026, month: 11, day: 29))
        let (date, second) = CivilDate.split(unixSeconds: -1)
        #expect(date == CivilDate(year: 1969, month: 12, day: 31) && second == 86_399)
    }

    @Test func roundTripsEveryDayFrom1600To4200() {
        for days in stride(from: -135_140, through: 814_000, by: 1) {
            let date = CivilDate(daysSinceEpoch: days)
            guard date.daysSinceEpoch == days, (1...12).contains(date.month), (1...31).contains(date.day) else {
                Issue.record("day \(days) gave \(date)")
                return
            }
        }
    }
}
