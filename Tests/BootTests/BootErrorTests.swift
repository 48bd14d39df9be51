import Testing

@testable import Boot

@Suite struct BootErrorTests {
    @Test func aFailureIsExactlyTwoLines() {
        let error = BootError(stage: .attest, cause: "/dev/sev-guest did not appear", next: "load sev_guest")
        #expect(error.lines == ["vhsm-init: attest failed: /dev/sev-guest did not appear", "next: load sev_guest"])
        #expect(error.description == "vhsm-init: attest failed: /dev/sev-guest did not appear\nnext: load sev_guest")
    }

    @Test func lineBreaksInACauseAreFlattened() {
        let error = BootError(stage: .volume, cause: "libcryptsetup said:\nno\r\nway", next: "a\nb")
        #expect(error.lines == ["vhsm-init: volume failed: libcryptsetup said: no way", "next: a b"])
    }

    @Test func stageNamesAreTheConsoleWords() {
        #expect(
            BootError.Stage.allCases.map(\.rawValue) == [
                "mounts", "config", "modules", "attest", "derive", "volume", "mount", "network", "handoff", "supervise",
                "shutdown",
            ])
    }

    @Test func systemErrorsNameCallPathAndErrno() {
        let error = SystemError("mount", "/dev/mapper/vhsm on /var/lib/vhsm (ext4)", errno: 19)
        #expect(error.description == "mount /dev/mapper/vhsm on /var/lib/vhsm (ext4): No such device (ENODEV)")
        #expect(SystemError.describe(4095).hasSuffix("(errno 4095)"))
    }
}

@Suite struct RestartPolicyTests {
    let policy = RestartPolicy(
        initial: .milliseconds(200), maximum: .milliseconds(1000), fastRun: .seconds(10), limit: 5)

    @Test func fastFailuresDoubleTheDelayUpToTheMaximumThenGiveUp() {
        var policy = policy
        let decisions = (0..<5).map { _ in policy.serviceExited(after: .milliseconds(50)) }
        #expect(
            decisions == [
                .restart(after: .milliseconds(200)), .restart(after: .milliseconds(400)),
                .restart(after: .milliseconds(800)), .restart(after: .milliseconds(1000)), .giveUp(fastFailures: 5),
            ])
    }

    @Test func aLongRunResetsTheCount() {
        var policy = policy
        _ = policy.serviceExited(after: .seconds(1))
        _ = policy.serviceExited(after: .seconds(1))
        #expect(policy.serviceExited(after: .seconds(60)) == .restart(after: .milliseconds(200)))
        #expect(policy.consecutiveFastFailures == 0)
        #expect(policy.serviceExited(after: .seconds(1)) == .restart(after: .milliseconds(200)))
    }

    @Test func aLimitOfOneGivesUpAtTheFirstFastFailure() {
        var policy = RestartPolicy(initial: .milliseconds(1), maximum: .milliseconds(1), fastRun: .seconds(1), limit: 1)
        #expect(policy.serviceExited(after: .zero) == .giveUp(fastFailures: 1))
    }

    @Test func largeFailureCountsDoNotOverflow() {
        #expect(policy.delay(forFailure: 10_000) == .milliseconds(1000))
        #expect(policy.delay(forFailure: 1) == .milliseconds(200))
    }

    @Test func theConfigurationFeedsThePolicy() {
        let policy = RestartPolicy(BootConfig.Restart())
        #expect(
            policy == RestartPolicy(initial: .milliseconds(200), maximum: .seconds(30), fastRun: .seconds(10), limit: 5)
        )
    }
}
