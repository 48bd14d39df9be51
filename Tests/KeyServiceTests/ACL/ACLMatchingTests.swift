import Foundation
import Testing

@testable import KeyService

@Suite struct ACLMatchingTests {
    private func acl(_ texts: String...) throws -> ACL {
        ACL(policies: try texts.enumerated().map { index, text in try Policy.parse(text, name: "p\(index)") })
    }

    @Test func exactMatch() throws {
        let acl = try acl(#"path "secret/foo" { capabilities = ["read"] }"#)
        #expect(acl.allows(.read, path: "secret/foo"))
        #expect(acl.allows(.read, path: "/secret/foo"))
        #expect(!acl.allows(.update, path: "secret/foo"))
        #expect(!acl.allows(.read, path: "secret/foo/bar"))
        #expect(!acl.allows(.read, path: "secret/fo"))
        #expect(!acl.allows(.read, path: "secret/foobar"))
    }

    @Test func trailingGlobIsAPrefix() throws {
        let acl = try acl(#"path "secret/foo*" { capabilities = ["read"] }"#)
        for path in ["secret/foo", "secret/foobar", "secret/foo/bar/baz"] {
            #expect(acl.allows(.read, path: path), "\(path)")
        }
        #expect(!acl.allows(.read, path: "secret/fo"))
        #expect(!acl.allows(.read, path: "other/foo"))
        let everything = try self.acl(#"path "*" { capabilities = ["read"] }"#)
        #expect(everything.allows(.read, path: "anything/at/all"))
    }

    @Test func plusIsExactlyOneSegment() throws {
        let acl = try acl(#"path "secret/data/+/cfg" { capabilities = ["read", "create", "update"] }"#)
        #expect(acl.allows(.read, path: "secret/data/app1/cfg"))
        #expect(acl.allows(.create, path: "secret/data/app2/cfg"))
        #expect(!acl.allows(.read, path: "secret/data/app1/other"))
        #expect(!acl.allows(.read, path: "secret/data/a/b/cfg"))
        #expect(!acl.allows(.read, path: "secret/data/cfg"))
        #expect(!acl.allows(.read, path: "secret/data/app1/cfg/x"))

        let globbed = try self.acl(#"path "secret/+/team*" { capabilities = ["read"] }"#)
        #expect(globbed.allows(.read, path: "secret/a/teamb"))
        #expect(globbed.allows(.read, path: "secret/a/team/x/y"))
        #expect(!globbed.allows(.read, path: "secret/a/b/teamb"))
        let leading = try self.acl(#"path "+/keys" { capabilities = ["read"] }"#)
        #expect(leading.allows(.read, path: "transit/keys"))
    }

    /// Precedence: the examples in OpenBao's `CheckAllowedFromNonExactPaths` comment, each pair (loser, winner).
    @Test(arguments: [
        ("foo/+", "foo/a*", "foo/abc"),  // first wildcard later wins
        ("foo/+/bar/baz", "foo/bar/+/baz", "foo/bar/bar/baz"),
        ("foo/+/ba*", "foo/+/bar", "foo/x/bar"),  // non-glob beats glob at the same position
        ("foo/*", "foo/+", "foo/x"),
        ("foo/+/+/baz", "foo/bar/+/baz", "foo/bar/x/baz"),
        ("foo/+/bar/b*", "foo/+/bar/ba*", "foo/x/bar/bab"),  // longer wins
        ("foo/+/+/*", "foo/+/x/*", "foo/a/x/b"),  // fewer `+` segments wins
        ("secret/*", "secret/data/*", "secret/data/x"),  // longest prefix
    ])
    func mostSpecificPatternWins(loser: String, winner: String, path: String) throws {
        let acl = try acl(
            #"path "\#(loser)" { capabilities = ["read"] }"#, #"path "\#(winner)" { capabilities = ["update"] }"#)
        #expect(acl.capabilities(for: path) == [.update], "\(winner) should beat \(loser) on \(path)")
        let reversed = try self.acl(
            #"path "\#(winner)" { capabilities = ["update"] }"#, #"path "\#(loser)" { capabilities = ["read"] }"#)
        #expect(reversed.capabilities(for: path) == [.update])
    }

    @Test func exactBeatsGlobsEvenWhenTheGlobDenies() throws {
        let acl = try acl(
            #"path "secret/*" { capabilities = ["deny"] }"#, #"path "secret/open" { capabilities = ["read"] }"#,
            #"path "secret/pub/*" { capabilities = ["read"] }"#)
        #expect(acl.allows(.read, path: "secret/open"))
        #expect(acl.allows(.read, path: "secret/pub/x"))
        #expect(!acl.allows(.read, path: "secret/other"))
        #expect(acl.capabilityNames(for: "secret/other") == ["deny"])
    }

    @Test func denyWinsForTheSamePattern() throws {
        let acl = try acl(
            #"path "transit/keys/*" { capabilities = ["read", "list"] }"#,
            #"path "transit/keys/*" { capabilities = ["deny"] }"#,
            #"path "transit/keys/*" { capabilities = ["update"] }"#)
        #expect(acl.capabilities(for: "transit/keys/k") == [.deny])
        #expect(!acl.allows(.read, path: "transit/keys/k"))
        // Within one policy too, and for an explicit exact deny under a granting glob.
        let single = try self.acl(
            """
            path "transit/keys/*" { capabilities = ["read"] }
            path "transit/keys/secret" { capabilities = ["deny"] }
            path "transit/keys/secret" { capabilities = ["read", "sudo"] }
            """)
        #expect(single.allows(.read, path: "transit/keys/app"))
        #expect(!single.allows(.read, path: "transit/keys/secret"))
        #expect(!single.hasSudo(.read, path: "transit/keys/secret"))
    }

    @Test func samePatternUnitesAcrossPolicies() throws {
        let acl = try acl(
            #"path "transit/encrypt/app" { capabilities = ["update"] }"#,
            #"path "transit/encrypt/app" { capabilities = ["create"] }"#,
            #"path "secret/+/x" { capabilities = ["read"] }"#, #"path "secret/+/x" { capabilities = ["list"] }"#)
        #expect(acl.capabilities(for: "transit/encrypt/app") == [.create, .update])
        #expect(acl.capabilities(for: "secret/a/x") == [.read, .list])
        #expect(acl.capabilityNames(for: "transit/encrypt/app") == ["create", "update"])
    }

    @Test func createAndUpdateAreDistinct() throws {
        let acl = try acl(#"path "transit/encrypt/*" { capabilities = ["update"] }"#)
        #expect(acl.allows(.update, path: "transit/encrypt/existing"))
        #expect(!acl.allows(.create, path: "transit/encrypt/new"))
    }

    @Test func listMatchesWithTheTrailingSlash() throws {
        let glob = try acl(#"path "secret/metadata/*" { capabilities = ["list"] }"#)
        #expect(glob.allows(.list, path: "secret/metadata/"))
        #expect(glob.allows(.list, path: "secret/metadata/sub/"))
        let exact = try acl(#"path "transit/keys" { capabilities = ["list"] }"#)
        #expect(exact.allows(.list, path: "transit/keys/"))
        #expect(!exact.allows(.read, path: "transit/keys/"))
        // `foo*` covers LIST `foo/` through the slash-less lookup.
        let bare = try acl(#"path "transit/key*" { capabilities = ["list"] }"#)
        #expect(bare.allows(.list, path: "transit/keys/"))
        // A read grant on keys/* does not allow listing keys/.
        let readOnly = try acl(#"path "transit/keys/*" { capabilities = ["read"] }"#)
        #expect(!readOnly.allows(.list, path: "transit/keys/"))
        #expect(readOnly.allows(.read, path: "transit/keys/app"))
    }

    @Test func defaultPolicyGrantsSelfServiceOnly() {
        let acl = ACL(policies: [Policy.defaultPolicy])
        #expect(acl.allows(.read, path: "auth/token/lookup-self"))
        #expect(acl.allows(.update, path: "auth/token/renew-self"))
        #expect(acl.allows(.update, path: "auth/token/revoke-self"))
        #expect(acl.allows(.update, path: "sys/capabilities-self"))
        #expect(acl.allows(.create, path: "cubbyhole/x"))
        #expect(acl.allows(.update, path: "sys/wrapping/wrap"))
        #expect(acl.allows(.update, path: "sys/tools/hash/sha2-256"))
        #expect(!acl.allows(.update, path: "auth/token/create"))
        #expect(!acl.allows(.update, path: "transit/encrypt/k"))
        #expect(!acl.allows(.list, path: "transit/keys/"))
        #expect(!acl.allows(.read, path: "sys/mounts"))
        #expect(acl.capabilityNames(for: "transit/keys/k") == ["deny"])
        #expect(acl.capabilityNames(for: "auth/token/lookup-self") == ["read"])
    }

    @Test func rootGrantsEverything() throws {
        let acl = ACL(policies: [Policy.root])
        #expect(acl.isRoot)
        for operation in ACLOperation.allCases {
            #expect(acl.authorize(operation, path: "sys/audit/file", requiresSudo: true))
        }
        #expect(acl.capabilities(for: "anything") == Capability.granting)
        #expect(acl.capabilities(for: "anything").contains(.sudo))
        #expect(acl.capabilityNames(for: "anything") == ["root"])
        #expect(ACL.authorize(operation: .read, path: "sys/audit", policies: [.root]))
    }

    @Test func noPoliciesDeniesEverything() {
        let acl = ACL(policies: [])
        #expect(!acl.allows(.read, path: "auth/token/lookup-self"))
        #expect(acl.capabilities(for: "x").isEmpty)
        #expect(acl.capabilityNames(for: "x") == ["deny"])
    }

    @Test func sudoPathsNeedSudo() throws {
        #expect(SudoPaths.requiresSudo("sys/audit"))
        #expect(SudoPaths.requiresSudo("sys/audit/file"))
        #expect(SudoPaths.requiresSudo("sys/auth/userpass"))
        #expect(SudoPaths.requiresSudo("sys/seal"))
        #expect(SudoPaths.requiresSudo("auth/token/accessors/"))
        #expect(!SudoPaths.requiresSudo("sys/auditx"))
        #expect(!SudoPaths.requiresSudo("sys/auth"))
        #expect(!SudoPaths.requiresSudo("sys/mounts"))
        #expect(!SudoPaths.requiresSudo("transit/keys/k"))

        let plain = [try Policy.parse(#"path "sys/audit*" { capabilities = ["read"] }"#)]
        let withSudo = [try Policy.parse(#"path "sys/audit*" { capabilities = ["read", "sudo"] }"#)]
        #expect(!ACL.authorize(operation: .read, path: "sys/audit", policies: plain))
        #expect(ACL.authorize(operation: .read, path: "sys/audit", policies: withSudo))
        #expect(ACL.authorize(operation: .read, path: "sys/audit", policies: plain, requiresSudo: false))
        #expect(!ACL.authorize(operation: .update, path: "sys/audit/file", policies: withSudo))
        #expect(ACL.capabilities(for: "sys/audit", policies: withSudo) == [.read, .sudo])
    }

    /// The §5 "policies & tokens" scenario: a child token's policy on transit and KV.
    @Test func conformanceScenario() throws {
        let policy = try Policy.parse(
            """
            path "transit/encrypt/app" { capabilities = ["update"] }
            path "transit/decrypt/app" { capabilities = ["update"] }
            path "transit/keys/*" { capabilities = ["read"] }
            path "transit/keys/secret" { capabilities = ["deny"] }
            path "secret/data/+/cfg" { capabilities = ["create", "read", "update"] }
            """, name: "app")
        let acl = ACL(policies: [policy, Policy.defaultPolicy])
        #expect(acl.allows(.update, path: "transit/encrypt/app"))
        #expect(acl.allows(.update, path: "transit/decrypt/app"))
        #expect(!acl.allows(.create, path: "transit/encrypt/newkey"))
        #expect(!acl.allows(.update, path: "transit/keys/app/rotate"))
        #expect(acl.allows(.read, path: "transit/keys/app"))
        #expect(!acl.allows(.read, path: "transit/keys/secret"))
        #expect(!acl.allows(.list, path: "transit/keys/"))
        #expect(!acl.allows(.read, path: "sys/mounts"))
        #expect(acl.allows(.read, path: "secret/data/app1/cfg"))
        #expect(!acl.allows(.read, path: "secret/data/app1/other"))
        #expect(!acl.allows(.read, path: "secret/data/a/b/cfg"))
        #expect(acl.allows(.read, path: "auth/token/lookup-self"))
    }
}
