public import SNP

/// What an emulated product looks like from the guest: report version, CPUID bytes, firmware version,
/// PLATFORM_INFO and a recent TCB, taken from the real reports of each product line.
public struct ChipProfile: Sendable {
    public var product: Product
    public var reportVersion: UInt32
    public var cpuidFamily: UInt8
    public var cpuidModel: UInt8
    public var cpuidStepping: UInt8
    public var firmware: FirmwareVersion
    public var platformInfo: PlatformInfo
    public var defaultTCB: TCBLevels

    public static func of(_ product: Product) -> ChipProfile {
        switch product {
        case .milan:
            ChipProfile(
                product: .milan, reportVersion: 3, cpuidFamily: 0x19, cpuidModel: 0x01, cpuidStepping: 1,
                firmware: FirmwareVersion(major: 1, minor: 55, build: 29), platformInfo: PlatformInfo(rawValue: 0x25),
                defaultTCB: TCBLevels(bootLoader: 4, tee: 0, snp: 24, microcode: 219))
        case .genoa:
            ChipProfile(
                product: .genoa, reportVersion: 5, cpuidFamily: 0x19, cpuidModel: 0x11, cpuidStepping: 1,
                firmware: FirmwareVersion(major: 1, minor: 55, build: 43), platformInfo: PlatformInfo(rawValue: 0x25),
                defaultTCB: TCBLevels(bootLoader: 10, tee: 0, snp: 25, microcode: 84))
        case .turin:
            ChipProfile(
                product: .turin, reportVersion: 5, cpuidFamily: 0x1A, cpuidModel: 0x02, cpuidStepping: 1,
                firmware: FirmwareVersion(major: 1, minor: 55, build: 61), platformInfo: PlatformInfo(rawValue: 0x67),
                defaultTCB: TCBLevels(fmc: 0, bootLoader: 1, tee: 0, snp: 2, microcode: 71))
        }
    }
}
