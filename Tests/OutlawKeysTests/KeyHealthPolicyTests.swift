import Foundation
import OutlawConfig
import OutlawKeys
import OutlawStore
import Testing

/// The key-health schedule and the expiry warning with a clock and a calendar the test controls.
@Suite("Key health policy")
struct KeyHealthPolicyTests {
    static var utc: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }

    /// 24 h checks, 365-day keys, warnings from 14 days before; UTC days.
    let policy = KeyHealthPolicy(DaemonConfiguration.Keys(), calendar: KeyHealthPolicyTests.utc)

    /// A fixed instant: `2026-MM-DD hh:00 UTC`.
    func at(_ month: Int, _ day: Int, _ hour: Int = 12, year: Int = 2026) -> Date {
        KeyHealthPolicyTests.utc.date(from: DateComponents(year: year, month: month, day: day, hour: hour))!
    }

    @Test func configurationGivesTheSchedule() {
        #expect(policy.checkInterval == 86_400 && policy.lifetimeDays == 365 && policy.warnDays == 14)
        var keys = DaemonConfiguration.Keys()
        keys.checkIntervalHours = 0.0005
        #expect(KeyHealthPolicy(keys).checkInterval == 1.8)
    }

    @Test func aKeyIsDueOnceItsLastCheckIsAnIntervalOld() {
        let set = at(1, 10)
        var key = KeyFacts(setAt: set, status: .ok, lastCheckAt: set, lastCheckResult: .accepted)
        #expect(!policy.isDue(key, now: set.addingTimeInterval(3600)))
        #expect(!policy.isDue(key, now: set.addingTimeInterval(86_399)))
        #expect(policy.isDue(key, now: set.addingTimeInterval(86_400)))
        // Never checked (stored while Metrc was unreachable): at once.
        key = KeyFacts(setAt: set, status: .unverified)
        #expect(policy.isDue(key, now: set))
        // The clock went back past the last check: checked rather than waiting for it to catch up.
        key = KeyFacts(setAt: set, status: .ok, lastCheckAt: set, lastCheckResult: .accepted)
        #expect(policy.isDue(key, now: set.addingTimeInterval(-60)))
    }

    @Test func anUnansweredCheckIsTriedAgainSooner() {
        let last = at(3, 1)
        let key = KeyFacts(setAt: at(1, 1), status: .ok, lastCheckAt: last, lastCheckResult: .unreachable)
        #expect(!policy.isDue(key, now: last.addingTimeInterval(299)))
        #expect(policy.isDue(key, now: last.addingTimeInterval(300)))
        // Never later than the interval itself.
        let quick = KeyHealthPolicy(checkInterval: 2, lifetimeDays: 365, warnDays: 14, calendar: KeyHealthPolicyTests.utc)
        #expect(quick.isDue(key, now: last.addingTimeInterval(2)))
    }

    @Test func aRejectedKeyIsNeverDue() {
        let key = KeyFacts(setAt: at(1, 1), status: .rejected, lastCheckAt: at(1, 2), lastCheckResult: .refused)
        #expect(!policy.isDue(key, now: at(12, 31)))
    }

    @Test func expiryIsTheLifetimeFromTheDayTheKeyWasSet() {
        let key = KeyFacts(setAt: at(1, 10, 23), status: .ok)
        #expect(policy.expectedExpiry(key) == at(1, 10, 0, year: 2027))
        #expect(policy.day(policy.expectedExpiry(key)) == "2027-01-10")
        #expect(policy.daysLeft(key, now: at(12, 27)) == 14)
    }

    @Test func metrcsOwnExpiryWins() {
        let key = KeyFacts(setAt: at(1, 10), status: .ok, metrcExpiresAt: at(6, 30))
        #expect(policy.day(policy.expectedExpiry(key)) == "2026-06-30")
        #expect(policy.isExpiring(key, now: at(6, 16)) && !policy.isExpiring(key, now: at(6, 15)))
    }

    @Test func theWarningStartsWarnDaysBeforeAndComesOnceADay() {
        let key = KeyFacts(setAt: at(1, 10), status: .ok, lastCheckAt: at(12, 1), lastCheckResult: .accepted)
        // Expected expiry 2027-01-10; warnings from 2026-12-27 (14 days before).
        #expect(policy.warning(key, now: at(12, 26, 23), lastWarnedDay: nil) == nil)
        let first = policy.warning(key, now: at(12, 27, 0), lastWarnedDay: nil)
        #expect(first == ExpiryWarning(expires: "2027-01-10", daysLeft: 14, day: "2026-12-27"))
        #expect(first?.when == "in 14 days")
        // Logged: not again that day, whatever the hour.
        #expect(policy.warning(key, now: at(12, 27, 23), lastWarnedDay: "2026-12-27") == nil)
        // The next day, once more.
        #expect(policy.warning(key, now: at(12, 28, 6), lastWarnedDay: "2026-12-27")?.daysLeft == 13)
        // On the day and after it, still (Metrc has not refused it yet).
        #expect(policy.warning(key, now: at(1, 10, 9, year: 2027), lastWarnedDay: "2027-01-09")?.when == "today")
        #expect(policy.warning(key, now: at(1, 13, 9, year: 2027), lastWarnedDay: nil)?.when == "3 days ago")
    }

    @Test func aRejectedKeyGetsNoExpiryWarning() {
        let key = KeyFacts(setAt: at(1, 10), status: .rejected)
        #expect(!policy.isExpiring(key, now: at(1, 9, year: 2027)))
        #expect(policy.warning(key, now: at(1, 9, year: 2027), lastWarnedDay: nil) == nil)
    }

    @Test func aOneDayLifetimeWarnsFromTheDayItIsSet() {
        let short = KeyHealthPolicy(checkInterval: 3600, lifetimeDays: 1, warnDays: 1, calendar: KeyHealthPolicyTests.utc)
        let key = KeyFacts(setAt: at(5, 4, 8), status: .ok)
        #expect(short.warning(key, now: at(5, 4, 8), lastWarnedDay: nil) == ExpiryWarning(expires: "2026-05-05", daysLeft: 1, day: "2026-05-04"))
        let none = KeyHealthPolicy(checkInterval: 3600, lifetimeDays: 1, warnDays: 0, calendar: KeyHealthPolicyTests.utc)
        #expect(none.warning(key, now: at(5, 4, 8), lastWarnedDay: nil) == nil)
        #expect(none.warning(key, now: at(5, 5, 0), lastWarnedDay: nil)?.when == "today")
    }

    @Test func theDefaultKeyCountsFromWhenOutlawdFirstUsedIt() {
        let health = DefaultKeyHealth(fingerprint: "00", last4: "abcd", since: at(2, 1), lastCheckAt: at(2, 1), lastCheckResult: .accepted,
                                      acceptedAt: at(2, 1))
        let facts = KeyFacts(health, status: .ok)
        #expect(policy.day(policy.expectedExpiry(facts)) == "2027-02-01")
        #expect(KeyFacts(health, status: nil).status == .unverified)
        #expect(!policy.isDue(facts, now: at(2, 1, 20)) && policy.isDue(facts, now: at(2, 2, 12)))
    }
}
