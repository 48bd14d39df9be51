import Foundation
import Testing

@testable import KeyService

@Suite struct PolicyParsingTests {
    @Test func parsesHCLWithCommentsAndSeveralStanzas() throws {
        let policy = try Policy.parse(
            """
            # Read-only access to the app's keys
            path "transit/keys/*" {
                capabilities = ["read", "list"]
            }
            // encrypt with one key
            path "transit/encrypt/app" { capabilities = ["update"] }
            /* a block
               comment */
            path "/secret/data/+/cfg" {
                capabilities = ["create", "read", "update", "patch", "delete", "sudo", "scan",]
                allowed_parameters = {
                    "ttl" = ["1h", "2h"]
                    "*" = []
                }
                denied_parameters {
                    "Force" = []
                }
                required_parameters = ["ttl"]
                min_wrapping_ttl = "0s"
            }
            """, name: "app")
        #expect(policy.name == "app")
        #expect(policy.rules.count == 3)
        #expect(policy.rules[0].path == "transit/keys/")
        #expect(policy.rules[0].isPrefix)
        #expect(policy.rules[0].capabilities == [.read, .list])
        #expect(policy.rules[1].path == "transit/encrypt/app")
        #expect(!policy.rules[1].isPrefix && !policy.rules[1].hasSegmentWildcards)
        let kv = policy.rules[2]
        #expect(kv.path == "secret/data/+/cfg")  // leading "/" stripped
        #expect(kv.hasSegmentWildcards && !kv.isPrefix)
        #expect(kv.capabilities == [.create, .read, .update, .patch, .delete, .sudo, .scan])
        #expect(kv.allowedParameters?["ttl"] == [.string("1h"), .string("2h")])
        #expect(kv.allowedParameters?["*"] == [])
        #expect(kv.deniedParameters?["force"] == [])
        #expect(kv.requiredParameters == ["ttl"])
        #expect(kv.minWrappingTTL == 0 && kv.maxWrappingTTL == 0)
    }

    @Test func parsesTheVaultDocsExamples() throws {
        // The shapes §3.2 names: exact, trailing glob, `+` segment, deny.
        let policy = try Policy.parse(
            """
            path "secret/foo*" { capabilities = ["read"] }
            path "secret/+/teamb" { capabilities = ["read", "list"] }
            path "secret/super-secret" { capabilities = ["deny"] }
            path "sys/audit*" { capabilities = ["read", "sudo"] }
            """)
        #expect(policy.rules.map(\.path) == ["secret/foo", "secret/+/teamb", "secret/super-secret", "sys/audit"])
        #expect(policy.rules.map(\.isPrefix) == [true, false, false, true])
        #expect(policy.rules[2].capabilities == [.deny])
    }

    @Test func parsesJSONForm() throws {
        // hvac JSON-encodes a dict policy.
        let policy = try Policy.parse(
            #"{"path": {"transit/encrypt/app": {"capabilities": ["update"]}, "transit/keys/*": {"capabilities": ["read"], "allowed_parameters": {"x": []}}}}"#
        )
        #expect(policy.rules.count == 2)
        #expect(policy.rules[0].path == "transit/encrypt/app")
        #expect(policy.rules[0].capabilities == [.update])
        #expect(policy.rules[1].path == "transit/keys/" && policy.rules[1].isPrefix)

        let listed = try Policy.parse(
            #"{"path": [{"a/b": {"capabilities": ["read"]}}, {"c/+": {"capabilities": ["list"]}}]}"#)
        #expect(listed.rules.map(\.path) == ["a/b", "c/+"])
        #expect(listed.rules[1].hasSegmentWildcards)
    }

    @Test func invalidCapabilityUsesVaultText() {
        #expect(throws: PolicyError("failed to parse policy: path \"transit/*\": invalid capability \"fly\"")) {
            try Policy.parse(#"path "transit/*" { capabilities = ["read", "fly"] }"#)
        }
        #expect(throws: PolicyError("failed to parse policy: path \"a\": invalid capability \"root\"")) {
            try Policy.parse(#"{"path": {"a": {"capabilities": ["root"]}}}"#)
        }
    }

    @Test func denyReplacesTheOtherCapabilities() throws {
        let policy = try Policy.parse(#"path "a" { capabilities = ["read", "deny", "update"] }"#)
        #expect(policy.rules[0].capabilities == [.deny])
    }

    @Test func legacyPolicyKeyword() throws {
        let policy = try Policy.parse(
            """
            path "r" { policy = "read" }
            path "w" { policy = "write" }
            path "s" { policy = "sudo" }
            path "d" { policy = "deny" }
            """)
        #expect(
            policy.rules.map(\.capabilities) == [
                [.read, .list], [.create, .read, .update, .delete, .list],
                [.create, .read, .update, .delete, .list, .sudo], [.deny],
            ])
        #expect(throws: PolicyError("failed to parse policy: path \"x\": invalid policy \"admin\"")) {
            try Policy.parse(#"path "x" { policy = "admin" }"#)
        }
    }

    @Test func rejectsUnknownKeysAndBadSyntax() {
        #expect(
            throws: PolicyError("failed to parse policy: 1 error occurred:\n\t* invalid key \"paths\" on line 0\n\n")
        ) {
            try Policy.parse(#"paths "a" { capabilities = ["read"] }"#)
        }
        #expect(
            throws: PolicyError(
                "failed to parse policy: 1 error occurred:\n\t* path \"a\": invalid key \"capability\" on line 2\n\n")
        ) {
            try Policy.parse("path \"a\" {\n  capability = [\"read\"]\n}")
        }
        #expect(
            throws: PolicyError("failed to parse policy: path \"a/+*\": invalid use of wildcards ('+*' is forbidden)")
        ) {
            try Policy.parse(#"path "a/+*" { capabilities = ["read"] }"#)
        }
        for broken in [
            #"path "a" { capabilities = ["read" }"#, #"path "a" {"#, #"path "a { }"#,
            "path \"a\" { capabilities = [\"read\"] } @",
        ] {
            #expect {
                try Policy.parse(broken)
            } throws: { error in
                (error as? PolicyError)?.message.hasPrefix("failed to parse policy: At ") == true
            }
        }
    }

    @Test func acceptsTheOtherPathKeysAndEmptyPolicies() throws {
        let policy = try Policy.parse(
            """
            name = "ignored"
            path "a" {
              comment = "x"
              capabilities = ["read"]
              mfa_methods = ["m"]
              pagination_limit = 10
              expiration = "2999-01-01T00:00:00Z"
              control_group = { ttl = "1h" }
            }
            """)
        #expect(policy.rules.count == 1)
        #expect(try Policy.parse("# nothing here\n").rules.isEmpty)
    }

    @Test func expiredRulesAreDropped() throws {
        let policy = try Policy.parse(
            #"path "old" { capabilities = ["read"]  expiration = "2001-01-01T00:00:00Z" }"#)
        #expect(policy.rules.isEmpty)
    }

    @Test func wrappingTTLBoundsAdmitOnlyWrappedRequestsWithinThem() throws {
        let policy = try Policy.parse(
            #"path "a" { capabilities = ["read"]  min_wrapping_ttl = "1m"  max_wrapping_ttl = 3600 }"#)
        #expect(policy.rules[0].minWrappingTTL == 60 && policy.rules[0].maxWrappingTTL == 3600)
        let acl = ACL(policies: [policy])
        #expect(!acl.allows(.read, path: "a"))
        #expect(!acl.allows(.read, path: "a", wrapTTL: 30))
        #expect(acl.allows(.read, path: "a", wrapTTL: 60))
        #expect(acl.allows(.read, path: "a", wrapTTL: 3600))
        #expect(!acl.allows(.read, path: "a", wrapTTL: 3601))
        // The capabilities endpoints do not look at wrapping.
        #expect(acl.capabilities(for: "a") == [.read])
        // Merged with a looser rule on the same path: the lowest minimum and the highest maximum.
        let loose = try Policy.parse(#"path "a" { capabilities = ["read"]  min_wrapping_ttl = "10s" }"#, name: "b")
        let merged = ACL(policies: [policy, loose])
        #expect(merged.allows(.read, path: "a", wrapTTL: 10))
        #expect(!merged.allows(.read, path: "a"))
        #expect(throws: PolicyError.self) {
            try Policy.parse(#"path "a" { capabilities = ["read"]  min_wrapping_ttl = "2h"  max_wrapping_ttl = "1h" }"#)
        }
        #expect(throws: PolicyError.self) {
            try Policy.parse(#"path "a" { capabilities = ["read"]  max_wrapping_ttl = "soon" }"#)
        }
    }

    @Test func heredocsAndEscapes() throws {
        let items = try HCL.parse("a = <<EOF\nline \"one\"\nEOF\nb = \"x\\\"y\\u00e9\"\n")
        #expect(items[0].value == .string("line \"one\"\n"))
        #expect(items[1].value == .string("x\"y\u{e9}"))
    }

    @Test func defaultPolicyParses() {
        let paths = Policy.defaultPolicy.rules.map(\.path)
        #expect(paths.contains("auth/token/lookup-self"))
        #expect(paths.contains("sys/capabilities-self"))
        #expect(paths.contains("cubbyhole/"))
        #expect(Policy.defaultPolicy.name == "default")
    }
}
