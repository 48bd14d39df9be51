public import SNP

/// The seam through which the guest binary (which links vhsmd's code) prepares the supervised service before PID 1
/// starts it: the host-side `vhsm-init` links Boot only and has none. Boot stays free of vhsmd's code; the guest's
/// `main.swift` passes `VHSMDHandoff.prepare` here.
public struct ServiceHandoffContext: Sendable {
    /// `handoff.args`.
    public let arguments: [String]
    /// PID 1's Secure Processor (the configured attestation provider).
    public let device: any GuestDevice
    /// The descriptor number the service inherits the prepared bytes on.
    public let descriptor: Int32
    /// The report broker's socket.
    public let reportSocket: String
}

/// What the preparation gives PID 1.
public struct ServiceHandoff: Sendable {
    /// Written to a pipe whose read end the service inherits on `ServiceHandoffContext.descriptor`, once per start.
    /// Secret: zeroed when the supervisor returns.
    public var descriptorContents: [UInt8]
    /// Files and directory trees the service must own (chowned to `handoff.user` before it starts).
    public var ownedPaths: [String]
    /// Added to `handoff.args` (never part of the measured configuration).
    public var arguments: [String]
    /// Console lines.
    public var lines: [String]

    public init(descriptorContents: [UInt8], ownedPaths: [String], arguments: [String], lines: [String]) {
        self.descriptorContents = descriptorContents
        self.ownedPaths = ownedPaths
        self.arguments = arguments
        self.lines = lines
    }
}

/// Prepares the service; an error is printed as one sentence (the handoff stage fails, nothing is started).
public typealias PrepareService = @Sendable (ServiceHandoffContext) throws -> ServiceHandoff

/// Where PID 1 serves reports, and the descriptor number of the handoff.
enum ServiceLayout {
    static let runDirectory = "/run/vhsm"
    static let reportSocket = "/run/vhsm/report.sock"
    static let descriptor: Int32 = 3
}

extension BootConfig {
    /// `handoff.user`: numeric (the initramfs has no /etc/passwd), never root.
    struct ServiceUser: Equatable, Sendable, CustomStringConvertible {
        var uid: UInt32
        var gid: UInt32
        var description: String { "\(uid):\(gid)" }
    }
}
