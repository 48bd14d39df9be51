import ArgumentParser
import SNP
import Sealing
import Volume

struct VolumeInspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a volume's LUKS2 header and tokens, and whether vhsm would accept it.",
        discussion: """
            Reads the header area (the first 2 MiB) once and validates it exactly as vhsm-init does before unlocking: \
            both binary-header checksums, then every JSON field against what vhsm writes (one aes-xts-plain64 segment, \
            4096-byte sectors, PBKDF2-SHA256 keyslots, only vhsm-snp, vhsm-recovery and at most one vhsm-reenroll token, no reencryption). \
            The token MAC needs the machine's sealing key and is checked only at unlock.

            The state: blank; luks2 (ready); provisioning (a first boot cut after its token was written: the same \
            launch resumes it); unfinished (cut before the token: the same launch formats it again); foreign.

            Exit codes: 0 blank, unfinished, or a LUKS2 header vhsm accepts; 1 foreign data or a header vhsm \
            refuses; 2 usage error or unreadable.
            """)

    @Argument(help: "A volume image or block device.") var image: String
    @Flag(help: "Print JSON.") var json = false

    struct Report: Encodable {
        var file: String
        var state: String
        var verdict: String
        var problem: String?
        var found: String?
        var header: Header?
    }

    struct Header: Encodable {
        struct Keyslot: Encodable {
            var id: Int
            var key_bits: Int
            var kdf: String
            var area_offset: UInt64
            var area_size: UInt64
        }
        struct SNP: Encodable {
            var keyslot: Int
            var seal_mode: String
            var guest_field_select: UInt64
            var tcb: String
            var measurement: String?
            var image_id: String?
            var family_id: String?
            var guest_svn: UInt32?
            var mac: String
        }
        struct Recovery: Encodable {
            var keyslot: Int
            var suite: String
            var recipient_sha256: String
        }
        var uuid: String
        var seqid: UInt64
        var cipher: String
        var key_bits: Int
        var sector_size: Int
        var data_offset: UInt64
        var integrity: String
        var keyslots: [Keyslot]
        var digest_keyslots: [Int]
        var snp_token: SNP?
        var recovery_token: Recovery?
        /// A pending recovery grant from 'vhsm volume reenroll', for the guest key with this fingerprint.
        var reenroll_grant_recipient_sha256: String?
        /// The first boot has not finished: the token's state or the binary headers' provisioning mark says so.
        var provisioning: Bool
    }

    func run() async throws {
        let report = try Self.report(image)
        print(json ? Output.json(report) : Self.text(report))
        if report.state == "foreign" || report.problem != nil { throw ExitCode(1) }
    }

    /// What `inspect` says of the volume at `image`: its state, verdict and validated header.
    static func report(_ image: String) throws -> Report {
        let volume = LUKSVolume(path: image)
        var report = Report(file: image, state: "", verdict: "")
        do throws(VolumeError) {
            switch try volume.probe() {
            case .blank:
                report.state = "blank"
                report.verdict = "blank: first and last MiB are zero; vhsm-init would format it"
            case .foreign(let found):
                report.state = "foreign"
                report.found = found
                report.verdict = "refused: not blank and not LUKS2; vhsm never formats it"
            case .luks2(let uuid):
                report.state = "luks2"
                do throws(VolumeError) {
                    let header = Self.header(try volume.readHeader().metadata)
                    report.header = header
                    report.verdict = "accepted: exactly the header shape vhsm writes"
                    if header.provisioning {
                        report.state = "provisioning"
                        report.verdict =
                            "accepted, first boot unfinished: the vhsm-snp token says provisioning (a power cut "
                            + "before the filesystem was made and mounted); the next boot of the launch that wrote it "
                            + "resumes it, any other launch refuses it"
                    }
                } catch {
                    if case .io = error { throw error }
                    if let unfinished = try? volume.readUnfinished(), unfinished.marked, !unfinished.hasSNPToken {
                        report.state = "unfinished"
                        report.found = "a LUKS2 header with the provisioning mark and no vhsm-snp token, UUID \(uuid)"
                        report.verdict =
                            "a first boot cut before its token was written: vhsm-init of the launch that wrote it "
                            + "formats it again (the mark verifies only under that launch's key, checked at boot); "
                            + "any other launch refuses it"
                    } else {
                        report.verdict = "refused: vhsm-init would not unlock it"
                        report.found = "a LUKS2 header, UUID \(uuid) (unvalidated)"
                        report.problem = error.description
                    }
                }
            }
        } catch {
            throw CLIError.volume(error)
        }
        return report
    }

    static func header(_ metadata: Metadata) -> Header {
        Header(
            uuid: metadata.uuid, seqid: metadata.sequenceID, cipher: Layout.cipher, key_bits: Layout.volumeKeyBytes * 8,
            sector_size: Layout.sectorSize, data_offset: metadata.segmentOffset,
            integrity: metadata.integrity ?? "none",
            keyslots: metadata.keyslots.map {
                Header.Keyslot(
                    id: $0.id, key_bits: $0.keyBytes * 8, kdf: "pbkdf2-sha256, \($0.kdfIterations) iterations",
                    area_offset: $0.areaOffset, area_size: $0.areaSize)
            },
            digest_keyslots: metadata.digest.keyslots,
            snp_token: metadata.snpToken.map {
                Header.SNP(
                    keyslot: $0.keyslot, seal_mode: $0.binding.mode.rawValue,
                    guest_field_select: $0.binding.guestFieldSelect, tcb: hex($0.binding.tcb),
                    measurement: $0.binding.measurement.map(hex), image_id: $0.binding.imageID.map(hex),
                    family_id: $0.binding.familyID.map(hex), guest_svn: $0.binding.guestSVN, mac: hex($0.mac))
            },
            recovery_token: metadata.recoveryToken.map {
                Header.Recovery(
                    keyslot: $0.keyslot, suite: $0.suite.rawValue, recipient_sha256: hex($0.recipientFingerprint))
            },
            reenroll_grant_recipient_sha256: metadata.reenrollGrant.map { hex($0.recipientFingerprint) },
            provisioning: metadata.snpToken?.provisioning == true || metadata.provisioningMark != nil)
    }

    static func text(_ report: Report) -> String {
        var lines = ["\(report.file): \(report.state), \(report.verdict)"]
        if let found = report.found { lines.append("  found        \(found)") }
        if let problem = report.problem { lines.append("  problem      \(problem)") }
        guard let header = report.header else { return lines.joined(separator: "\n") }
        lines += [
            "  uuid         \(header.uuid)",
            "  segment      \(header.cipher), \(header.key_bits)-bit key, \(header.sector_size)-byte sectors, "
                + "data at \(header.data_offset), integrity \(header.integrity)",
        ]
        for slot in header.keyslots {
            let role =
                slot.id == header.snp_token?.keyslot
                ? "machine" : slot.id == header.recovery_token?.keyslot ? "recovery" : "unassigned"
            lines.append("  keyslot \(slot.id)    \(role), \(slot.kdf)")
        }
        if let snp = header.snp_token {
            lines.append(
                "  vhsm-snp     keyslot \(snp.keyslot), seal mode \(snp.seal_mode), "
                    + "guest field select 0x\(String(snp.guest_field_select, radix: 16)), tcb \(snp.tcb)")
            if let measurement = snp.measurement { lines.append("               measurement \(measurement)") }
            if let imageID = snp.image_id, let familyID = snp.family_id, let svn = snp.guest_svn {
                lines.append("               image_id \(imageID), family_id \(familyID), guest_svn \(svn)")
            }
            lines.append("               mac \(snp.mac) (checked at unlock)")
        }
        if let recovery = header.recovery_token {
            lines.append(
                "  vhsm-recovery keyslot \(recovery.keyslot), \(recovery.suite), to public key sha256 "
                    + recovery.recipient_sha256)
        }
        if let recipient = header.reenroll_grant_recipient_sha256 {
            lines.append(
                "  vhsm-reenroll recovery grant for the guest key sha256 \(recipient) (consumed at its next boot)")
        }
        lines.append(
            header.provisioning
                ? "  state        provisioning (first boot unfinished; marked ready once the volume is mounted)"
                : "  state        ready (it will never be formatted again)")
        return lines.joined(separator: "\n")
    }

    private static func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }
}
