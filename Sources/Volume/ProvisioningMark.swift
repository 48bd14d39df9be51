internal import Crypto

/// The mark a first boot leaves in the LUKS2 binary headers from `crypt_format` until the volume is ready: label
/// `vhsm-provisioning` and subsystem base64(HMAC-SHA256(macKey, "vhsm/provisioning/v1" ‖ uuid)), with the same MAC
/// key as the `vhsm-snp` token (`VolumeKeys.macKey`, derivable before the volume key exists).
///
/// It covers the window before the token exists (after the header, after the keyslot): a later boot that derives
/// the same key proves the token-less header is its own unfinished one, and may format it again. A header without
/// the mark, or with a mark this launch's key does not verify, is never formatted.
public enum ProvisioningMark {
    public static let label = "vhsm-provisioning"
    static let context = "vhsm/provisioning/v1"
    /// base64 of 32 bytes.
    static let subsystemLength = 44

    /// The subsystem text for `uuid` (lower case) under `key`.
    static func subsystem(uuid: String, key: SymmetricKey) -> String {
        Encoding.base64String(code(uuid: uuid, key: key))
    }

    static func code(uuid: String, key: SymmetricKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array((context + uuid.lowercased()).utf8), using: key))
    }

    /// Constant-time check of a mark's 32 bytes.
    static func verify(_ mark: [UInt8], uuid: String, key: SymmetricKey) -> Bool {
        HMAC<SHA256>.isValidAuthenticationCode(
            mark, authenticating: Array((context + uuid.lowercased()).utf8), using: key)
    }

    /// The decoded mark of a binary header's label and subsystem fields: nil when both are empty; the 32 bytes
    /// when they hold exactly the provisioning form; a rejection for anything else.
    static func parse(label: [UInt8], subsystem: [UInt8]) throws(Rejection) -> [UInt8]? {
        if label.allSatisfy({ $0 == 0 }), subsystem.allSatisfy({ $0 == 0 }) { return nil }
        let labelText = label.prefix { $0 != 0 }
        let subsystemText = subsystem.prefix { $0 != 0 }
        guard labelText.elementsEqual(Self.label.utf8), label.dropFirst(labelText.count).allSatisfy({ $0 == 0 }),
            subsystem.dropFirst(subsystemText.count).allSatisfy({ $0 == 0 }), subsystemText.count == subsystemLength,
            let mark = Encoding.unbase64(subsystemText), mark.count == 32
        else {
            throw Rejection(
                field: "label/subsystem", found: "a value",
                expected: "empty, or label '\(Self.label)' with a 44-character base64 subsystem")
        }
        return mark
    }
}
