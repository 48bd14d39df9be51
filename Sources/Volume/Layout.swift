import StrictJSON

/// The one LUKS2 layout vhsm writes, and therefore the only one it accepts.
///
/// ```
/// 0x000000  primary binary header (4 KiB) + JSON area (12 KiB)     hdr_size = 16 KiB
/// 0x004000  secondary binary header (4 KiB) + JSON area (12 KiB)
/// 0x008000  keyslots area (2 MiB − 32 KiB: room for 8 keyslots of a 64-byte key, 5 of a 96-byte key)
/// 0x200000  data segment (aes-xts-plain64, 4096-byte sectors, to the end of the device)
/// ```
///
/// The whole header area (the first 2 MiB) is what `HeaderImage` reads once and what the boot agent
/// activates from, so its size is fixed here instead of being taken from the (attacker-controlled) header.
public enum Layout {
    /// One binary header plus its JSON area (LUKS2 `hdr_size`).
    public static let metadataSize = 16 << 10
    /// The binary header at the start of each metadata copy.
    public static let binaryHeaderSize = 4096
    /// The JSON area of each copy (`config.json_size`).
    public static let jsonAreaSize = metadataSize - binaryHeaderSize
    /// Both metadata copies, then the keyslots area, end here: the data segment's offset.
    public static let headerAreaSize = 2 << 20
    /// `config.keyslots_size`.
    public static let keyslotsAreaSize = headerAreaSize - 2 * metadataSize
    /// The data segment's encryption sector size.
    public static let sectorSize = 4096
    /// The segment and keyslot cipher.
    public static let cipher = "aes-xts-plain64"
    /// aes-xts with a 512-bit key (two AES-256 keys).
    public static let volumeKeyBytes = 64
    /// `hmac(sha256)` integrity adds a 256-bit HMAC key to the volume key.
    public static let integrityKeyBytes = 32
    /// The dm-integrity algorithm vhsm may enable.
    public static let integrity = "hmac(sha256)"
    /// PBKDF2-SHA256 iterations of machine and recovery keyslots: their passphrases are 256-bit random values,
    /// so a slow KDF buys nothing (systemd-cryptenroll and clevis do the same).
    public static let pbkdf2Iterations: UInt64 = 1000
    /// Anti-forensic splitter stripes, as cryptsetup writes them.
    public static let afStripes: UInt64 = 4000
    /// Keyslots vhsm ever holds at once: machine, recovery, and the replacement during a key change.
    public static let maximumKeyslots = 3
    /// The smallest device vhsm formats: the header area and 30 MiB of data.
    public static let minimumDeviceSize = headerAreaSize + (30 << 20)
    /// What `probe` reads at each end of the device to decide "blank".
    public static let blankCheckSize = 1 << 20
    /// How much `probe` reads at a time while it checks that the rest of a device is zero.
    static let blankScanChunk = 4 << 20

    /// The size of one keyslot's area for a volume key of `keyBytes`: key × stripes, rounded up to 4 KiB.
    static func keyslotAreaSize(keyBytes: Int) -> Int {
        (keyBytes * Int(afStripes) + 4095) / 4096 * 4096
    }
}
