/// What a sealing key is bound to (DESIGN §4): the one seal-mode type of vhsm-init's LUKS volume, the volume's
/// `vhsm-snp` token and vhsmd's barrier. It lives in this dependency-free module because `Volume` must not
/// import `SNP` (its keys arrive as bytes); `SNP` adds the GUEST_FIELD_SELECT of each mode and the TCB pin rule.
///
/// The raw value is what configurations and the token spell, and part of the LUKS passphrase's HKDF info.
public enum SealMode: String, Sendable, CaseIterable, Hashable {
    /// GUEST_POLICY + MEASUREMENT + TCB_VERSION: this exact kernel, initramfs and command line on this chip.
    case measurement
    /// GUEST_POLICY + TCB_VERSION: this chip, any image. Binds no image: every image the host launches on this
    /// chip with the same policy (and HOST_DATA, and ID key if any) derives the same key.
    case platform
    /// GUEST_POLICY + IMAGE_ID + FAMILY_ID + GUEST_SVN + TCB_VERSION: images signed with the same ID key (the
    /// firmware always mixes in its digest) at an SVN not below the enrolled one.
    case image

    /// The choices, as messages list them: `measurement, platform or image`.
    public static let choices = "measurement, platform or image"
}
