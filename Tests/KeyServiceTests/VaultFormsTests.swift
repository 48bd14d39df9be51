import Testing

@testable import KeyService

/// Small pieces of Vault's output formats that hvac users read back (checked against OpenBao by Tests/hvac).
@Suite struct VaultFormsTests {
    @Test(arguments: [
        (Int64(0), "0s"), (45, "45s"), (60, "1m0s"), (90, "1m30s"), (3600, "1h0m0s"), (7200, "2h0m0s"),
        (90061, "25h1m1s"),
    ])
    func durationsReadLikeGos(seconds: Int64, text: String) {
        #expect(KVStore.goDuration(seconds) == text)
    }

    @Test func tokenDisplayNamesAreSanitisedLikeVaults() {
        #expect(TokenBackend.displayName(nil) == "token")
        #expect(TokenBackend.displayName("") == "token")
        #expect(TokenBackend.displayName("My Name!") == "token-My-Name")
        #expect(TokenBackend.displayName("ci-runner_7") == "token-ci-runner-7")
        #expect(TokenBackend.displayName("é") == "token-")
    }
}
