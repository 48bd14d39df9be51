/// An IPv4 address, kept as its four octets in network order.
struct IPv4Address: Hashable, Sendable, CustomStringConvertible {
    var octets: (UInt8, UInt8, UInt8, UInt8)

    init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) { octets = (a, b, c, d) }

    /// Parses dotted-quad notation, four decimal octets without leading zeros.
    init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var values: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part == "0" || !part.hasPrefix("0"), let value = UInt8(part)
            else { return nil }
            values.append(value)
        }
        octets = (values[0], values[1], values[2], values[3])
    }

    /// The address as `struct in_addr`'s `s_addr` holds it: network byte order in memory.
    var networkOrder: UInt32 {
        UInt32(octets.0) | UInt32(octets.1) << 8 | UInt32(octets.2) << 16 | UInt32(octets.3) << 24
    }

    var description: String { "\(octets.0).\(octets.1).\(octets.2).\(octets.3)" }

    static func == (lhs: IPv4Address, rhs: IPv4Address) -> Bool { lhs.networkOrder == rhs.networkOrder }
    func hash(into hasher: inout Hasher) { hasher.combine(networkOrder) }
}

/// An interface address with its prefix: `10.0.2.15/24`.
struct IPv4Interface: Hashable, Sendable, CustomStringConvertible {
    var address: IPv4Address
    var prefixLength: Int

    init(address: IPv4Address, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `a.b.c.d/n` with n in 0…32.
    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPv4Address(String(parts[0])),
            parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), let prefix = Int(parts[1]), (0...32).contains(prefix)
        else { return nil }
        self.init(address: address, prefixLength: prefix)
    }

    /// The netmask: `/24` is 255.255.255.0.
    var netmask: IPv4Address {
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << (32 - prefixLength)
        return IPv4Address(
            UInt8(truncatingIfNeeded: mask >> 24), UInt8(truncatingIfNeeded: mask >> 16),
            UInt8(truncatingIfNeeded: mask >> 8), UInt8(truncatingIfNeeded: mask))
    }

    var description: String { "\(address)/\(prefixLength)" }
}
