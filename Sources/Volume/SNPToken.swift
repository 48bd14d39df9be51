public import Sealing
import StrictJSON

/// The public values of one SNP enrolment. The boot agent uses them to request the same key again and, when
/// it differs, to print expected-vs-actual; they are authenticated only by the token MAC.
public struct SNPBinding: Sendable, Equatable {
    public var mode: SealMode
    /// GUEST_FIELD_SELECT of the MSG_KEY_REQ that derived the sealing key.
    public var guestFieldSelect: UInt64
    /// The TCB_VERSION the key is pinned to (8 bytes, report order).
    public var tcb: [UInt8]
    /// Measurement mode: the enrolled MEASUREMENT (48 bytes).
    public var measurement: [UInt8]?
    /// Image mode: IMAGE_ID and FAMILY_ID (16 bytes each) and the enrolled GUEST_SVN.
    public var imageID: [UInt8]?
    public var familyID: [UInt8]?
    public var guestSVN: UInt32?

    public init(
        mode: SealMode, guestFieldSelect: UInt64, tcb: [UInt8], measurement: [UInt8]? = nil, imageID: [UInt8]? = nil,
        familyID: [UInt8]? = nil, guestSVN: UInt32? = nil
    ) {
        self.mode = mode
        self.guestFieldSelect = guestFieldSelect
        self.tcb = tcb
        self.measurement = measurement
        self.imageID = imageID
        self.familyID = familyID
        self.guestSVN = guestSVN
    }

    /// The mode-specific fields are present exactly for their mode, with their sizes.
    func check() throws(Rejection) {
        guard tcb.count == 8 else { throw Rejection(field: "tcb", found: "\(tcb.count) bytes", expected: "8 bytes") }
        switch mode {
        case .measurement:
            guard measurement?.count == 48, imageID == nil, familyID == nil, guestSVN == nil else {
                throw Rejection(
                    field: "measurement-mode binding", found: "other fields",
                    expected: "a 48-byte measurement and no image fields")
            }
        case .image:
            guard measurement == nil, imageID?.count == 16, familyID?.count == 16, guestSVN != nil else {
                throw Rejection(
                    field: "image-mode binding", found: "other fields",
                    expected: "16-byte image_id and family_id, a guest_svn, no measurement")
            }
        case .platform:
            guard measurement == nil, imageID == nil, familyID == nil, guestSVN == nil else {
                throw Rejection(
                    field: "platform-mode binding", found: "mode-specific fields", expected: "none")
            }
        }
    }
}

/// The `vhsm-snp` LUKS2 token: the machine keyslot's enrolment and its MAC over the header parameters.
///
/// ```json
/// {"type":"vhsm-snp","keyslots":["0"],"version":1,"seal_mode":"measurement","guest_field_select":41,
///  "tcb":"<16 hex>","measurement":"<96 hex>","mac":"<64 hex>"}
/// ```
/// Image mode has `image_id`, `family_id` (32 hex each) and `guest_svn` (number) instead of `measurement`;
/// platform mode has neither. A first boot writes `"state":"provisioning"` before `mac` until the volume has its
/// filesystem and is mounted; then the token is written again without it. No `state` means ready (volumes made
/// before the field existed are ready). The MAC covers the state.
public struct SNPToken: Sendable, Equatable {
    public static let type = "vhsm-snp"
    public static let version: UInt64 = 1

    public var keyslot: Int
    public var binding: SNPBinding
    /// The first boot has not finished (`"state":"provisioning"`): no user data can exist yet.
    public var provisioning: Bool
    /// HMAC-SHA256 (32 bytes) keyed with `VolumeKeys.macKey` over `HeaderMAC.message`.
    public var mac: [UInt8]

    public init(keyslot: Int, binding: SNPBinding, provisioning: Bool = false, mac: [UInt8]) {
        self.keyslot = keyslot
        self.binding = binding
        self.provisioning = provisioning
        self.mac = mac
    }

    static let provisioningState = "provisioning"

    init(_ fields: inout Fields) throws(Rejection) {
        try fields.expect("type", Self.type)
        keyslot = try fields.singleKeyslot()
        try fields.expect("version", Self.version)
        let modeName = try fields.string("seal_mode")
        guard let mode = SealMode(rawValue: modeName) else {
            throw Rejection(
                field: "\(fields.path) seal_mode", found: "'\(modeName)'", expected: SealMode.choices)
        }
        binding = SNPBinding(
            mode: mode, guestFieldSelect: try fields.number("guest_field_select"), tcb: try fields.hex("tcb", count: 8))
        if fields.has("measurement") { binding.measurement = try fields.hex("measurement", count: 48) }
        if fields.has("image_id") { binding.imageID = try fields.hex("image_id", count: 16) }
        if fields.has("family_id") { binding.familyID = try fields.hex("family_id", count: 16) }
        if fields.has("guest_svn") {
            let svn = try fields.number("guest_svn")
            guard let value = UInt32(exactly: svn) else {
                throw Rejection(field: "\(fields.path) guest_svn", found: String(svn), expected: "a 32-bit value")
            }
            binding.guestSVN = value
        }
        do { try binding.check() } catch {
            throw Rejection(field: "\(fields.path) \(error.field)", found: error.found, expected: error.expected)
        }
        provisioning = false
        if fields.has("state") {
            try fields.expect("state", Self.provisioningState)
            provisioning = true
        }
        mac = try fields.hex("mac", count: 32)
        try fields.finish()
    }

    /// The token's fields that the MAC covers, in the order they are written and MACed (everything but `mac`).
    var macFields: [(String, String)] {
        var fields = [
            ("type", Self.type), ("keyslot", String(keyslot)), ("version", String(Self.version)),
            ("seal_mode", binding.mode.rawValue), ("guest_field_select", String(binding.guestFieldSelect)),
            ("tcb", Encoding.hex(binding.tcb)),
        ]
        if let measurement = binding.measurement { fields.append(("measurement", Encoding.hex(measurement))) }
        if let imageID = binding.imageID { fields.append(("image_id", Encoding.hex(imageID))) }
        if let familyID = binding.familyID { fields.append(("family_id", Encoding.hex(familyID))) }
        if let guestSVN = binding.guestSVN { fields.append(("guest_svn", String(guestSVN))) }
        if provisioning { fields.append(("state", Self.provisioningState)) }
        return fields
    }

    var json: JSON {
        var members: [(key: String, value: JSON)] = [
            ("type", .string(Self.type)), ("keyslots", .array([.string(String(keyslot))])),
            ("version", .number(Self.version)), ("seal_mode", .string(binding.mode.rawValue)),
            ("guest_field_select", .number(binding.guestFieldSelect)), ("tcb", .string(Encoding.hex(binding.tcb))),
        ]
        if let measurement = binding.measurement { members.append(("measurement", .string(Encoding.hex(measurement)))) }
        if let imageID = binding.imageID { members.append(("image_id", .string(Encoding.hex(imageID)))) }
        if let familyID = binding.familyID { members.append(("family_id", .string(Encoding.hex(familyID)))) }
        if let guestSVN = binding.guestSVN { members.append(("guest_svn", .number(UInt64(guestSVN)))) }
        if provisioning { members.append(("state", .string(Self.provisioningState))) }
        members.append(("mac", .string(Encoding.hex(mac))))
        return .object(members)
    }
}
