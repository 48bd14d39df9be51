public import SNP

/// What the hypervisor and the guest owner fix at SNP_LAUNCH_START / SNP_LAUNCH_FINISH.
public struct LaunchContext: Hashable, Sendable {
    public var measurement: [UInt8]
    public var policy: GuestPolicy
    public var hostData: [UInt8]
    /// The VMPL of the VMPCK the guest uses: requests for a lower VMPL are refused.
    public var callerVMPL: UInt32
    public var idBlock: LaunchIdentity?

    public init(
        measurement: [UInt8] = Array(repeating: 0, count: 48), policy: GuestPolicy = GuestPolicy(rawValue: 0x30000),
        hostData: [UInt8] = Array(repeating: 0, count: 32), callerVMPL: UInt32 = 0, idBlock: LaunchIdentity? = nil
    ) {
        self.measurement = measurement
        self.policy = policy
        self.hostData = hostData
        self.callerVMPL = callerVMPL
        self.idBlock = idBlock
    }
}

/// The identity an accepted ID block gives the guest: its fields and the digests of the keys that signed it.
public struct LaunchIdentity: Hashable, Sendable {
    public var familyID: [UInt8]
    public var imageID: [UInt8]
    public var guestSVN: UInt32
    /// SHA-384 of the ID public key (AMD format).
    public var idKeyDigest: [UInt8]
    /// SHA-384 of the author public key, when an author key signed the ID key.
    public var authorKeyDigest: [UInt8]?

    public init(familyID: [UInt8], imageID: [UInt8], guestSVN: UInt32, idKeyDigest: [UInt8], authorKeyDigest: [UInt8]?)
    {
        self.familyID = familyID
        self.imageID = imageID
        self.guestSVN = guestSVN
        self.idKeyDigest = idKeyDigest
        self.authorKeyDigest = authorKeyDigest
    }
}
