public import ArgumentParser
public import SNP

struct KeyDerive: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "derive",
        abstract: "Derive a 32-byte key from the Secure Processor (MSG_KEY_REQ) and print it as hex.",
        discussion: """
            The key is bound to the root (--root), the VMPL, HOST_DATA and the ID key digest, plus the guest fields \
            you select: policy, image-id, family-id, measurement, guest-svn, tcb. With 'tcb' selected, --tcb pins \
            the VCEK seed to that TCB (default: the current one), so firmware upgrades keep the key; a TCB above the \
            committed one is refused (INVALID_PARAM). VMRK keys change with every launch.

            Example: vhsm key derive --root vcek --fields policy,measurement,tcb --tcb 0400000000001800 --emulator /tmp/snp.sock
            The key is secret: it is printed once and not logged.

            Exit codes: 0 the key was printed; 1 the Secure Processor refused the request (e.g. a TCB above the \
            committed one, a VMPL below the guest's own, no VLEK); 2 usage error; 3 the Secure Processor could not \
            be reached (no /dev/sev-guest or no permission on it, or no emulator listening on --emulator).
            """)

    @Option(help: "Root key: vcek (the chip's; never the VLEK), vmrk (per launch) or vlek.")
    var root: DerivedKeyRequest.RootKey
    @Option(help: "Guest fields to mix in, comma-separated: policy,image-id,family-id,measurement,guest-svn,tcb.")
    var fields: String = ""
    @Option(help: "The VMPL to bind (0–3; not below the guest's own).") var vmpl: UInt32 = 0
    @Option(help: "Guest SVN to bind with 'guest-svn' (at most the ID block's).") var guestSvn: UInt32 = 0
    @Option(
        help:
            "TCB_VERSION to bind with 'tcb' (8 bytes hex in report order); default: COMMITTED_TCB, the highest the firmware derives."
    )
    var tcb: String?
    @OptionGroup var source: DeviceOptions

    func run() async throws {
        let select: GuestFieldSelect
        do { select = try GuestFieldSelect(names: fields) } catch { throw CLIError.usage("--fields \(error)") }
        guard vmpl <= 3 else { throw CLIError.usage("--vmpl must be 0 to 3") }
        var pinned = try tcb.map { try Inputs.tcb($0, option: "--tcb") }
        let device = try source.open(allowTSM: false)
        if select.contains(.tcbVersion), pinned == nil {
            // Pin to COMMITTED_TCB: CURRENT_TCB may run ahead of it (the firmware refuses a key above it), and
            // REPORTED_TCB is whatever the host chose.
            do { pinned = try device.attestationReport(ReportRequest(vmpl: vmpl)).committedTCB } catch {
                throw CLIError.device(device, error)
            }
        }
        if pinned != nil, !select.contains(.tcbVersion) {
            throw CLIError.usage("--tcb only takes effect with 'tcb' in --fields")
        }
        let request = DerivedKeyRequest(
            root: root, guestFieldSelect: select, vmpl: vmpl, guestSVN: guestSvn,
            tcbVersion: pinned ?? TCBVersion(rawValue: 0))
        var key: [UInt8]
        do { key = try device.derivedKeyBytes(request) } catch { throw CLIError.device(device, error) }
        defer { for index in key.indices { key[index] = 0 } }
        print(Hex.encode(key))
    }
}

extension DerivedKeyRequest.RootKey: ExpressibleByArgument {}
