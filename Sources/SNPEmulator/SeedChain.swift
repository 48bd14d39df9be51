import Crypto
import SNP

/// The VCEK seed model: one SHA-384 hash chain per TCB component, rooted in the chip secret.
///
/// `link(c, s) = SHA-384^(255 − s)(top_c)`: whoever holds the link for SPL `s` can compute every lower one
/// by hashing further, but no higher one. A firmware at TCB `t` therefore derives the VCEK seed of any
/// `t' ≤ t` (component-wise) and of no other, which is what makes a pinned, older `tcb_version` in MSG_KEY_REQ
/// stable across upgrades and a higher one impossible.
struct SeedChain: Sendable {
    /// The chain links at the running firmware's TCB: all the firmware keeps.
    private let links: [TCBLevels.Component: [UInt8]]
    let top: TCBLevels

    init(chipSecret: [UInt8], top: TCBLevels) {
        var links: [TCBLevels.Component: [UInt8]] = [:]
        for component in top.components {
            let label = Array("vhsm-emulator/tcb-chain/\(component.rawValue)".utf8)
            let start = Array(HMAC<SHA384>.authenticationCode(for: label, using: SymmetricKey(data: chipSecret)))
            links[component] = Self.hash(start, times: 255 - Int(top[component]!))
        }
        self.links = links
        self.top = top
    }

    /// The 32-byte VCEK seed for `tcb`, or nil when a component is above the chain's top. The seed of a TCB does
    /// not depend on the top it was reached from.
    func vcekSeed(for tcb: TCBLevels) -> [UInt8]? {
        var material = Array("vhsm-emulator/vcek-seed".utf8)
        for component in top.components {
            guard let target = tcb[component], let have = top[component], target <= have,
                let link = links[component]
            else { return nil }
            material += Self.hash(link, times: Int(have - target))
        }
        return Array(SHA256.hash(data: material))
    }

    private static func hash(_ value: [UInt8], times: Int) -> [UInt8] {
        var current = value
        for _ in 0..<times { current = Array(SHA384.hash(data: current)) }
        return current
    }
}
