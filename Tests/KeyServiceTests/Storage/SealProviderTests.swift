import Crypto
import Testing

@testable import KeyService

struct SealProviderTests {
    private static func bytes(_ key: SymmetricKey) -> [UInt8] {
        key.withUnsafeBytes { Array($0) }
    }

    @Test func devProviderReturnsOneRandomKeyPerProcess() throws {
        let first = try DevSealProvider().rootKey()
        let second = try DevSealProvider().rootKey()
        #expect(DevSealProvider().name == "dev")
        #expect(first.bitCount == 256)
        #expect(Self.bytes(first) == Self.bytes(second))
        #expect(Self.bytes(first) != [UInt8](repeating: 0, count: 32))
    }

    /// Pins the derivation: changing it would make every sealed data directory unreadable.
    /// Expected value: HKDF-SHA256(ikm 00…1f, salt "vhsm/barrier", info "vhsm/barrier/v1"), computed
    /// independently with Python's hmac module.
    @Test func guestProviderDerivesTheRootKeyWithTheBarrierLabel() throws {
        let provider = GuestSealProvider { Array(0..<32) }
        #expect(provider.name == "sev-guest")
        let expected = "eac31cad676975f25ff28743a804698ff2327fbc863663ba630f282d6d549003"
        #expect(
            Self.bytes(try provider.rootKey()).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() == expected
        )
    }

    @Test func guestRootKeyDiffersFromTheDerivedKeyAndTheLUKSLabel() throws {
        let derived: [UInt8] = Array(0..<32)
        let root = Self.bytes(try GuestSealProvider { derived }.rootKey())
        let luks = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: derived), salt: GuestSealProvider.defaultSalt,
            info: Array("vhsm/luks/tcb".utf8), outputByteCount: 32)
        #expect(root != derived)
        #expect(root != Self.bytes(luks))
    }

    @Test func guestProviderSaltSeparatesDataDirectories() throws {
        let one = try GuestSealProvider(salt: Array("dir-1".utf8)) { Array(0..<32) }.rootKey()
        let two = try GuestSealProvider(salt: Array("dir-2".utf8)) { Array(0..<32) }.rootKey()
        #expect(Self.bytes(one) != Self.bytes(two))
    }

    @Test func guestProviderRefusesADerivedKeyOfTheWrongLength() {
        let provider = GuestSealProvider(name: "emulator:/run/snp.sock") { [UInt8](repeating: 7, count: 16) }
        #expect {
            try provider.rootKey()
        } throws: { error in
            guard case SealError.derivedKeyLength(let name, 16) = error else { return false }
            return name == "emulator:/run/snp.sock" && "\(error)".contains("16-byte derived key")
        }
    }

    @Test func guestProviderNamesItselfWhenTheHardwareFails() {
        struct FirmwareError: Error, CustomStringConvertible {
            var description: String { "MSG_KEY_REQ failed: status 0x16" }
        }
        let provider = GuestSealProvider { throw FirmwareError() }
        #expect {
            try provider.rootKey()
        } throws: { error in
            "\(error)"
                == "the seal provider 'sev-guest' could not derive the barrier root key: MSG_KEY_REQ failed: status 0x16"
        }
    }
}
