import Crypto
import Foundation
import Sealing
import StrictJSON
import Testing

@testable import Volume

/// The `vhsm-reenroll` token: written and removed on a copy like a keyslot change, validated as strictly as the
/// other tokens, and the whole move (grant written on the operator's side, opened and used on the guest's) on a
/// real LUKS2 image. Nothing here activates a mapping, so none of it needs device-mapper.
@Suite struct ReenrollTests {
    /// The launch the volume moves to: its sealing key gives the request key and the challenge.
    static let newSealingKey = Fixtures.otherSealingKey

    /// The grant the operator makes for the new launch: recovery key and challenge, sealed to the request key.
    func grant(for image: TemporaryImage, challenge: [UInt8]? = nil) throws -> SealedSecret {
        let recovered = try image.volume.recover(privateKey: .p384(Fixtures.p384Recovery))
        let requestKey = try ReenrollGrant.requestKey(sealingKey: Self.newSealingKey, volumeUUID: Fixtures.uuid)
        let answer =
            challenge
            ?? ReenrollGrant.challenge(sealingKey: Self.newSealingKey, volumeUUID: Fixtures.uuid).withUnsafeBytes {
                Array($0)
            }
        return try SealedSecret.seal(
            try ReenrollGrant.secret(recoveryKey: recovered.key, challenge: answer), kind: .recoveryGrant,
            context: "volume|\(Fixtures.uuid)", to: .x25519(requestKey.publicKey))
    }

    @Test func writesReplacesAndRemovesExactlyOneGrant() throws {
        let (image, _) = try Fixtures.formattedImage()
        let first = try grant(for: image)
        try image.volume.writeReenrollGrant(first)
        var header = try image.volume.readHeader()
        #expect(header.reenrollGrant == first)
        #expect(try image.metadataJSON().contains("\"type\":\"vhsm-reenroll\",\"keyslots\":[]"))
        // The machine key still opens (the token MAC does not cover other tokens), libcryptsetup loads it.
        #expect(try header.checkKey(Fixtures.keys()) == header.snpToken.keyslot)

        let second = try grant(for: image)
        #expect(second != first)
        try image.volume.writeReenrollGrant(second)
        header = try image.volume.readHeader()
        #expect(header.reenrollGrant == second)
        #expect(try image.metadataJSON().components(separatedBy: "vhsm-reenroll").count == 2)

        #expect(try image.volume.removeReenrollGrant())
        #expect(try image.volume.readHeader().reenrollGrant == nil)
        #expect(try image.volume.removeReenrollGrant() == false)
    }

    @Test func refusesAGrantOfAnotherKindOrVolume() throws {
        let (image, _) = try Fixtures.formattedImage()
        let key = Curve25519.KeyAgreement.PrivateKey().publicKey
        let secret = [UInt8](repeating: 1, count: ReenrollGrant.secretBytes)
        let otherVolume = try SealedSecret.seal(
            secret, kind: .recoveryGrant, context: "volume|00000000-0000-4000-8000-000000000000", to: .x25519(key))
        let barrier = try SealedSecret.seal(
            secret, kind: .recoveryGrant, context: "barrier|/var/lib/vhsm", to: .x25519(key))
        let short = try SealedSecret.seal(
            [UInt8](repeating: 1, count: 32), kind: .recoveryGrant, context: "volume|\(Fixtures.uuid)",
            to: .x25519(key))
        let before = try image.headerArea()
        for bad in [otherVolume, barrier, short] {
            #expect(throws: VolumeError.self) { try image.volume.writeReenrollGrant(bad) }
        }
        #expect(try image.headerArea() == before)
    }

    /// Operator side, then guest side, on one image: the grant is written, the new launch opens it, checks the
    /// challenge, replaces the machine keyslot with the recovery key as authority and removes the grant.
    @Test func movesTheVolumeToTheLaunchTheGrantWasMadeFor() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.volume.writeReenrollGrant(try grant(for: image))

        let header = try image.volume.readHeader()
        let grant = try #require(header.reenrollGrant)
        let requestKey = try ReenrollGrant.requestKey(sealingKey: Self.newSealingKey, volumeUUID: header.uuid)
        var secret = try grant.open(with: .x25519(requestKey))
        defer { Encoding.zero(&secret) }
        let recoveryKey = try ReenrollGrant.recoveryKey(
            in: secret, challenge: ReenrollGrant.challenge(sealingKey: Self.newSealingKey, volumeUUID: header.uuid),
            volumeUUID: header.uuid)
        let new = Fixtures.keys(Self.newSealingKey)
        let slot = try image.volume.replaceMachineKey(
            authority: .recovery(recoveryKey), replacement: new, binding: Fixtures.binding())
        #expect(try image.volume.removeReenrollGrant())
        let after = try image.volume.readHeader()
        #expect(try after.checkKey(new) == slot)
        #expect(after.reenrollGrant == nil)
        #expect(throws: VolumeError.tokenMACMismatch(path: image.path)) { try after.checkKey(Fixtures.keys()) }
    }

    @Test func aGrantThatDoesNotAnswerTheChallengeYieldsNoKey() throws {
        let (image, _) = try Fixtures.formattedImage()
        let forged = try grant(for: image, challenge: [UInt8](repeating: 0, count: 32))
        let requestKey = try ReenrollGrant.requestKey(sealingKey: Self.newSealingKey, volumeUUID: Fixtures.uuid)
        let secret = try forged.open(with: .x25519(requestKey))
        #expect {
            _ = try ReenrollGrant.recoveryKey(
                in: secret,
                challenge: ReenrollGrant.challenge(sealingKey: Self.newSealingKey, volumeUUID: Fixtures.uuid),
                volumeUUID: Fixtures.uuid)
        } throws: { error in
            "\(error)".contains("does not answer this launch's challenge")
        }
    }

    @Test func theRequestKeyIsDeterministicPerLaunchAndVolume() throws {
        let a = try ReenrollGrant.requestKey(sealingKey: Fixtures.sealingKey, volumeUUID: Fixtures.uuid)
        let b = try ReenrollGrant.requestKey(sealingKey: Fixtures.sealingKey, volumeUUID: Fixtures.uuid.uppercased())
        let otherLaunch = try ReenrollGrant.requestKey(sealingKey: Fixtures.otherSealingKey, volumeUUID: Fixtures.uuid)
        let otherVolume = try ReenrollGrant.requestKey(
            sealingKey: Fixtures.sealingKey, volumeUUID: "00000000-0000-4000-8000-000000000000")
        #expect(a.rawRepresentation == b.rawRepresentation)
        #expect(a.rawRepresentation != otherLaunch.rawRepresentation)
        #expect(a.rawRepresentation != otherVolume.rawRepresentation)
        // HKDF-SHA256(ikm: sealing key, salt: UUID, info: "vhsm/recovery-request/volume", 32 bytes), as documented.
        let expected = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Fixtures.sealingKey), salt: Array(Fixtures.uuid.utf8),
            info: Array("vhsm/recovery-request/volume".utf8), outputByteCount: 32)
        #expect(expected.withUnsafeBytes { Array($0) } == Array(a.rawRepresentation))
    }

    // MARK: Header validation

    /// The metadata of a formatted image holding a grant, with `edit` applied to its tokens, validated.
    func validate(editingTokens edit: (inout [(key: String, value: JSON)]) -> Void) throws -> Metadata {
        let (image, _) = try Fixtures.formattedImage()
        try image.volume.writeReenrollGrant(try grant(for: image))
        guard case .object(var root) = try JSON.parse(Array(try image.metadataJSON().utf8)),
            let index = root.firstIndex(where: { $0.key == "tokens" }), case .object(var tokens) = root[index].value
        else {
            throw CocoaError(.fileReadCorruptFile)
        }
        edit(&tokens)
        root[index].value = .object(tokens)
        return try Metadata.validate(json: .object(root), uuid: Fixtures.uuid, sequenceID: 1, requireSNPToken: true)
    }

    /// Changes the `vhsm-reenroll` token's members.
    func editGrant(
        _ change: @escaping (inout [(key: String, value: JSON)]) -> Void
    ) -> (
        inout [(key: String, value: JSON)]
    ) -> Void {
        { tokens in
            for index in tokens.indices {
                guard case .object(var members) = tokens[index].value,
                    members.contains(where: { $0.key == "type" && $0.value == .string("vhsm-reenroll") })
                else { continue }
                change(&members)
                tokens[index].value = .object(members)
            }
        }
    }

    func rejection(_ edit: (inout [(key: String, value: JSON)]) -> Void) throws -> Rejection? {
        do {
            _ = try validate(editingTokens: edit)
            return nil
        } catch let rejection as Rejection {
            return rejection
        }
    }

    func set(_ key: String, _ value: JSON) -> (inout [(key: String, value: JSON)]) -> Void {
        editGrant { members in
            if let index = members.firstIndex(where: { $0.key == key }) {
                members[index].value = value
            } else {
                members.append((key, value))
            }
        }
    }

    @Test func acceptsExactlyTheGrantTokenItWrites() throws {
        let metadata = try validate { _ in }
        #expect(metadata.reenrollGrant?.context == "volume|\(Fixtures.uuid)")
        #expect(metadata.reenrollGrant?.ciphertext.count == ReenrollGrant.secretBytes + 16)
    }

    @Test func refusesMalformedAndExtraGrantTokens() throws {
        let otherUUID = "volume|00000000-0000-4000-8000-000000000000"
        let cases: [(String, (inout [(key: String, value: JSON)]) -> Void, String)] = [
            (
                "second token",
                { tokens in tokens.append(("9", tokens.first { $0.value["type"] == .string("vhsm-reenroll") }!.value))
                }, "tokens"
            ),
            ("a keyslot", set("keyslots", .array([.string("0")])), "token"),
            ("an unknown field", set("note", .string("x")), "token"),
            ("another volume", set("context", .string(otherUUID)), "context"),
            ("another purpose", set("context", .string("barrier|/var/lib/vhsm")), "context"),
            ("a long context", set("context", .string(String(repeating: "v", count: 4000))), "context"),
            ("another suite", set("suite", .string("P384-SHA384-AES256GCM")), "suite"),
            ("a short ciphertext", set("ciphertext", .string(Data(count: 48).base64EncodedString())), "ciphertext"),
            ("another version", set("version", .number(2)), "version"),
            ("uppercase hex", set("recipient", .string(String(repeating: "AB", count: 32))), "recipient"),
            (
                "no recovery token",
                { tokens in tokens.removeAll { $0.value["type"] == .string("vhsm-recovery") } }, "tokens"
            ),
        ]
        for (name, edit, field) in cases {
            let rejection = try self.rejection(edit)
            #expect(rejection != nil, "\(name) must be refused")
            #expect(rejection?.field.contains(field) == true, "\(name): \(String(describing: rejection))")
        }
    }

    /// On the disk, with valid checksums: a grant token naming a keyslot is refused before anything is used.
    @Test func readHeaderRefusesATamperedGrantToken() throws {
        let (image, _) = try Fixtures.formattedImage()
        try image.volume.writeReenrollGrant(try grant(for: image))
        try image.rewriteMetadata {
            $0.replacingOccurrences(
                of: "\"type\":\"vhsm-reenroll\",\"keyslots\":[]",
                with: "\"type\":\"vhsm-reenroll\",\"keyslots\":[\"0\"]")
        }
        #expect {
            _ = try image.volume.readHeader()
        } throws: { error in
            guard case .headerRejected(_, let field, _, let expected) = error as? VolumeError else { return false }
            return field.contains("vhsm-reenroll") && expected == "none ([])"
        }
    }
}
