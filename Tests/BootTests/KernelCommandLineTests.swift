import Testing

@testable import Boot

@Suite struct KernelCommandLineTests {
    typealias Parameter = KernelCommandLine.Parameter

    @Test func splitsOnWhitespaceAndKeepsNameValuePairs() {
        let line = KernelCommandLine("console=ttyS0  quiet\tvhsm.seal=platform\n")
        #expect(
            line.parameters == [
                Parameter(name: "console", value: "ttyS0"), Parameter(name: "quiet", value: nil),
                Parameter(name: "vhsm.seal", value: "platform"),
            ])
    }

    @Test func aQuotedValueKeepsItsSpacesAndLosesItsQuotes() {
        let line = KernelCommandLine(#"vhsm.handoff.args="--dev --port 8200" ro"#)
        #expect(
            line.parameters == [
                Parameter(name: "vhsm.handoff.args", value: "--dev --port 8200"), Parameter(name: "ro", value: nil),
            ])
    }

    @Test func aWhollyQuotedParameterLosesBothQuotes() {
        #expect(
            KernelCommandLine(#""vhsm.volume=/dev/vdb" x"#).parameters.first
                == Parameter(name: "vhsm.volume", value: "/dev/vdb"))
        #expect(KernelCommandLine(#""a b""#).parameters == [Parameter(name: "a b", value: nil)])
    }

    @Test func quotesInsideAValueStayAsTheKernelKeepsThem() {
        // next_arg() strips a quote only at the start of the value and at the end of the parameter.
        #expect(KernelCommandLine(#"k=a"b c"d"#).parameters == [Parameter(name: "k", value: #"a"b c"d"#)])
    }

    @Test func theNameEndsAtTheFirstEqualsSign() {
        #expect(
            KernelCommandLine("vhsm.recovery_key=a=b").parameters == [
                Parameter(name: "vhsm.recovery_key", value: "a=b")
            ])
        #expect(KernelCommandLine("k=").parameters == [Parameter(name: "k", value: "")])
        #expect(KernelCommandLine(#"k="""#).parameters == [Parameter(name: "k", value: "")])
    }

    @Test func doubleDashEndsTheKernelParameters() {
        let line = KernelCommandLine("vhsm.seal=image -- vhsm.seal=platform single")
        #expect(line.parameters == [Parameter(name: "vhsm.seal", value: "image")])
    }

    @Test func prefixSelectionDropsThePrefixAndKeepsOrder() {
        let line = KernelCommandLine("vhsm.a=1 other.vhsm.b=2 vhsm.c vhsmd=3 vhsm.a=4")
        #expect(
            line.parameters(withPrefix: "vhsm.") == [
                Parameter(name: "a", value: "1"), Parameter(name: "c", value: nil), Parameter(name: "a", value: "4"),
            ])
    }

    @Test func emptyAndBlankLinesHaveNoParameters() {
        #expect(KernelCommandLine("").parameters.isEmpty)
        #expect(KernelCommandLine("  \n").parameters.isEmpty)
    }
}
