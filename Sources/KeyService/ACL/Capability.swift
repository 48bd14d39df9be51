/// One ACL capability as written in a policy's `capabilities` list.
enum Capability: String, CaseIterable, Sendable, Hashable, Comparable {
    case deny, create, read, update, delete, list, sudo, patch
    /// OpenBao's capability for the recursive SCAN operation.
    case scan

    /// Every capability that grants something (what a `root` token holds).
    static let granting: Set<Capability> = Set(allCases).subtracting([.deny])

    static func < (lhs: Capability, rhs: Capability) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The logical operation an ACL check is made for; raw values equal `VaultRequest.Operation`'s.
enum ACLOperation: String, Sendable, CaseIterable {
    case read, create, update, delete, list, patch, scan

    /// The ACL operation of a request's operation. The switch is exhaustive on purpose: a request operation added
    /// later fails to compile here instead of being checked as some other operation (fail closed).
    init(_ operation: VaultRequest.Operation) {
        switch operation {
        case .read: self = .read
        case .create: self = .create
        case .update: self = .update
        case .delete: self = .delete
        case .list: self = .list
        case .patch: self = .patch
        }
    }

    /// Operations whose data a rule's `required_parameters`, `allowed_parameters` and `denied_parameters` constrain
    /// (Vault's and OpenBao's `AllowOperation`: read, create, update and patch).
    var checksParameters: Bool {
        switch self {
        case .read, .create, .update, .patch: true
        case .delete, .list, .scan: false
        }
    }

    /// The capability a policy must grant for this operation.
    var capability: Capability {
        switch self {
        case .read: .read
        case .create: .create
        case .update: .update
        case .delete: .delete
        case .list: .list
        case .patch: .patch
        case .scan: .scan
        }
    }
}

/// A policy could not be parsed or stored; Vault answers these with 400 and `message` as the only error.
package struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String

    init(_ message: String) { self.message = message }

    package var description: String { message }

    /// Formats several errors the way hashicorp/go-multierror does (Vault's key checks use it).
    static func multi(_ messages: [String]) -> String {
        if messages.count == 1 { return "1 error occurred:\n\t* \(messages[0])\n\n" }
        return "\(messages.count) errors occurred:\n\t" + messages.map { "* \($0)" }.joined(separator: "\n\t") + "\n\n"
    }
}
