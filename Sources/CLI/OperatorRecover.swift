import ArgumentParser
import Crypto
import Foundation
import NIOHTTP1
import SNP
import Sealing

/// How the operator decides that a recovery request comes from a launch they trust: the AMD chain (plus an emulator
/// root for tests), the MEASUREMENT they expect, and no DEBUG.
struct RecoveryTrustOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The MEASUREMENT the requesting launch must have (48 bytes hex). Required.",
            discussion: """
                Without it a host could boot any image, on any chip, and have the secret released to it: the \
                report proves the request comes from a genuine SEV-SNP guest, the measurement says which one. \
                'image/manifest' and 'vhsm measure' compute it from the kernel, initramfs and command line.
                """))
    var measurement: String
    @Option(help: "Also trust this ARK (PEM): the emulator's, from 'vhsm emulator certs'.") var trustEmulatorRoot:
        String?
    @Option(help: "The VCEK or VLEK (DER or PEM), when the request carries no certificates.") var cert: String?
    @Flag(help: "Release to a guest whose policy allows DEBUG (the host can read its memory). Refused by default.")
    var allowDebug = false

    /// `--measurement` as bytes (a usage error when it is not 96 hex digits).
    func expectedMeasurement() throws -> [UInt8] { try Inputs.hex(measurement, option: "--measurement", count: 48) }

    /// Verifies `request`; returns the verified report.
    func verify(_ request: RecoveryRequest, source: String) throws -> VerifiedReport {
        let expected = try expectedMeasurement()
        let (verifier, extra) = try Inputs.verifier(trustingEmulatorRoot: trustEmulatorRoot)
        do {
            return try request.verify(
                verifier: verifier, measurement: expected, endorsement: try cert.map(Inputs.endorsement),
                extraCertificates: extra, allowDebug: allowDebug)
        } catch let error as SealingError {
            throw CLIError.refused("\(source): \(error.description); nothing was released")
        }
    }

    /// One line naming the launch a secret goes to.
    static func describe(_ verified: VerifiedReport) -> String {
        let report = verified.report
        return "MEASUREMENT \(Hex.encode(report.measurement)), \(verified.product.name) chip "
            + "\(Hex.encode(report.chipID.prefix(8)))…, COMMITTED_TCB \(report.committedTCB.hex), signed by "
            + "\(verified.signer.description)"
    }
}

struct OperatorRecover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract:
            "Move vhsmd's store to a new chip, measurement or TCB: release its escrowed root key to the new launch.",
        discussion: """
            With an operator_key, vhsmd escrows its barrier root key to that key (an armored VHSM BARRIER KEY blob \
            stored next to the keyring). When a launch's seal no longer opens the store (another chip, another \
            measurement, a TCB the old pin cannot derive), vhsmd starts SEALED and serves, on \
            'GET /v1/sys/unseal/operator', a recovery request (an X25519 key bound to this launch by an attestation \
            report) and the escrow blob. This command:
              1. verifies the request: the AMD chain (or --trust-emulator-root), REPORT_DATA binding the key, \
            no DEBUG, and the MEASUREMENT you expect (--measurement, required);
              2. opens the escrow with your private key (on this machine only);
              3. seals the root key to the request's key (a VHSM RECOVERY GRANT) and sends it with \
            'PUT /v1/sys/unseal/operator'.
            vhsmd checks that the key opens its keyring, seals the keyring under this launch's root key, escrows the \
            new key, and unseals. The host carries the request, the escrow and the grant, and can open none of them.

            Exit codes: 0 vhsmd recovered and unsealed; 1 vhsmd refused, or the request is not from the expected \
            launch (nothing is released); 2 usage error or unreadable input; 3 vhsmd could not be reached (no \
            connection, or no answer in time).

            Example:
              vhsm operator recover https://10.0.2.15:8200 --key operator.pem --fingerprint AB:CD:… \\
                --measurement 9f2c…(96 hex digits)
            """)

    @OptionGroup var server: ServerOptions
    @OptionGroup var key: OperatorKeyOptions
    @OptionGroup var trust: RecoveryTrustOptions

    func run() async throws {
        let privateKey = try key.privateKey()
        let client = try server.client()
        let answer = try await client.send(.GET, RecoveryPaths.unseal, body: [])
        let object = try? JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
        guard answer.status == 200, let object, let requestText = object["request"] as? String,
            let escrowText = object["escrow"] as? String
        else {
            let errors = (object?["errors"] as? [String])?.joined(separator: "; ") ?? "no request in the answer"
            throw CLIError.refused("vhsmd refused GET /v1/\(RecoveryPaths.unseal) (HTTP \(answer.status)): \(errors)")
        }
        let request: RecoveryRequest
        do { request = try RecoveryRequest.parse(armored: requestText) } catch {
            throw CLIError.refused("vhsmd's recovery request: \(error.description)")
        }
        guard request.purpose == .barrier else {
            throw CLIError.refused("vhsmd's recovery request is for a \(request.purpose.rawValue), not its barrier")
        }
        let verified = try trust.verify(request, source: "vhsmd's recovery request")
        let escrow: SealedSecret
        do { escrow = try SealedSecret.parse(armored: escrowText, kind: .barrierKey) } catch {
            throw CLIError.refused("vhsmd's escrow: \(error.description)")
        }
        let context = RecoveryRequest.context(purpose: .barrier, subject: request.subject)
        guard escrow.context == context else {
            throw CLIError.refused(
                "the escrow is for '\(escrow.context)' but the request is for '\(context)': nothing was released")
        }
        var rootKey: [UInt8]
        do { rootKey = try escrow.open(with: privateKey) } catch {
            throw CLIError.refused("the escrowed root key does not open with \(key): \(error.description)")
        }
        let grant: SealedSecret
        do {
            defer { for index in rootKey.indices { rootKey[index] = 0 } }
            grant = try request.grant(rootKey)
        } catch {
            throw CLIError.refused("cannot seal the root key to the request's key: \(error)")
        }
        let body = try JSONSerialization.data(withJSONObject: ["grant": grant.armored])
        let put = try await client.send(.PUT, RecoveryPaths.unseal, body: Array(body))
        guard put.status == 200 else {
            let reply = try? JSONSerialization.jsonObject(with: Data(put.body)) as? [String: Any]
            let errors = (reply?["errors"] as? [String])?.joined(separator: "; ") ?? "no error message"
            throw CLIError.refused("vhsmd refused PUT /v1/\(RecoveryPaths.unseal) (HTTP \(put.status)): \(errors)")
        }
        let unsealed = (try? JSONSerialization.jsonObject(with: Data(put.body))) as? [String: Any] ?? [:]
        // A node of a cluster enrolls with the cluster's root key (its own member entry) instead of rekeying.
        let enrolledNode: String? = (unsealed["enrolled"] as? Bool) == true ? unsealed["node_id"] as? String : nil
        if key.json {
            var outcome: [String: Any] = [
                "recovered": true, "data_directory": request.subject,
                "measurement": Hex.encode(verified.report.measurement),
                "chip_id": Hex.encode(verified.report.chipID), "product": verified.product.name,
                "operator_key_sha256": SealedRootToken.hex(escrow.recipientFingerprint),
            ]
            if let enrolledNode { outcome["enrolled_node_id"] = enrolledNode }
            print(
                String(
                    decoding: try JSONSerialization.data(withJSONObject: outcome, options: [.sortedKeys]), as: UTF8.self
                ))
        } else if let enrolledNode {
            print(
                """
                vhsmd recovered: node \(enrolledNode) joined \(request.subject) (its own member entry holds the cluster's \
                root key, sealed to this launch) and is unsealed, a standby until it holds the lease
                  released to  \(RecoveryTrustOptions.describe(verified))
                """)
        } else {
            print(
                """
                vhsmd recovered: \(request.subject) is sealed to the new launch and unsealed
                  released to  \(RecoveryTrustOptions.describe(verified))
                  escrowed to  operator key \(SealedRootToken.hex(escrow.recipientFingerprint)) (the new root key)
                """)
        }
    }
}

enum RecoveryPaths {
    static let unseal = "sys/unseal/operator"
}
