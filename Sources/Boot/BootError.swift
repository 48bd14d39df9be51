/// A boot stage's failure as the console shows it (DESIGN §3 step 10): exactly one line
/// `vhsm-init: <stage> failed: <cause>` and one line `next: <what to check>`.
struct BootError: Error, Equatable, CustomStringConvertible {
    enum Stage: String, CaseIterable, Sendable {
        case mounts, config, modules, attest, derive, volume, mount, network, handoff, supervise, shutdown
    }

    var stage: Stage
    var cause: String
    var next: String

    init(stage: Stage, cause: String, next: String) {
        self.stage = stage
        self.cause = cause
        self.next = next
    }

    /// The two console lines. Line breaks inside cause or next are flattened so each stays one line.
    var lines: [String] {
        ["vhsm-init: \(stage.rawValue) failed: \(Self.oneLine(cause))", "next: \(Self.oneLine(next))"]
    }

    var description: String { lines.joined(separator: "\n") }

    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
