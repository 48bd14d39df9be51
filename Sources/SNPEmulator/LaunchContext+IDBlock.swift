public import SNP

extension LaunchContext {
    /// SNP_LAUNCH_FINISH with an ID block, as the firmware checks it: the ID auth signatures (the ID block by the
    /// ID key; the ID key by the author key when one is present), then that the ID block's LD equals the launch
    /// digest and its POLICY the guest's policy. On success the block's identity enters reports and key
    /// derivation (FAMILY_ID, IMAGE_ID, GUEST_SVN, the ID and author key digests).
    public mutating func accept(idBlock: IDBlock, authentication: IDAuthentication) throws(EmulatorError) {
        let problems = authentication.problems(for: idBlock)
        guard problems.isEmpty else {
            throw .launchRefused(
                .badSignature, reason: "the ID authentication does not verify: " + problems.joined(separator: "; "))
        }
        guard idBlock.launchDigest == measurement else {
            throw .launchRefused(
                .badMeasurement,
                reason: "the ID block expects MEASUREMENT \(Hex.encode(idBlock.launchDigest)), "
                    + "the launch measured \(Hex.encode(measurement))")
        }
        guard idBlock.policy == policy else {
            throw .launchRefused(
                .policyFailure,
                reason: "the ID block expects POLICY 0x\(String(idBlock.policy.rawValue, radix: 16)), "
                    + "the guest is launched with 0x\(String(policy.rawValue, radix: 16))")
        }
        self.idBlock = LaunchIdentity(
            familyID: idBlock.familyID, imageID: idBlock.imageID, guestSVN: idBlock.guestSVN,
            idKeyDigest: authentication.idKey.digest, authorKeyDigest: authentication.authorKey?.digest)
    }
}
