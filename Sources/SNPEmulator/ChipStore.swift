import CryptoExtras
import FoundationEssentials
import Glibc
public import SNP

/// Reads and writes a `ChipState` in its state directory, and caches minted VCEKs there.
public struct ChipStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    struct ChipFile: Codable {
        var format = 1
        var product: String
        var chipID: String
        var chipSecret: String
        /// COMMITTED_TCB.
        var tcb: String
        /// CURRENT_TCB and REPORTED_TCB when they differ from `tcb` (absent in older files: equal to it).
        var currentTCB: String?
        var reportedTCB: String?
    }

    private func path(_ name: String) -> String { directory.hasSuffix("/") ? directory + name : directory + "/" + name }

    public var exists: Bool { FileManager.default.fileExists(atPath: path("chip.json")) }

    /// Writes a new chip; refuses to overwrite an existing one.
    public func create(_ state: ChipState) throws(EmulatorError) {
        guard !exists else { throw .stateExists(path: directory) }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let file = ChipFile(
                product: state.product.rawValue, chipID: Hex.encode(state.chipID),
                chipSecret: Hex.encode(state.chipSecret),
                tcb: state.tcbVersion.hex,
                currentTCB: state.currentTCB == state.tcb ? nil : state.currentTCBVersion.hex,
                reportedTCB: state.reportedTCB == state.tcb ? nil : state.reportedTCBVersion.hex)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try write(Array(try encoder.encode(file)), to: "chip.json", secret: true)
            try write(Array(state.arkKeyPEM.utf8), to: "ark.key", secret: true)
            try write(Array(state.askKey.pemRepresentation.utf8), to: "ask.key", secret: true)
            try write(Array(state.ark.pemRepresentation.utf8), to: "ark.pem", secret: false)
            try write(Array(state.ask.pemRepresentation.utf8), to: "ask.pem", secret: false)
        } catch let error as EmulatorError {
            throw error
        } catch {
            throw .stateUnwritable(path: directory, detail: "\(error)")
        }
    }

    public func load() throws(EmulatorError) -> ChipState {
        guard exists else { throw .stateMissing(path: directory) }
        do {
            let file = try JSONDecoder().decode(ChipFile.self, from: Data(try read("chip.json")))
            guard file.format == 1, let product = Product(rawValue: file.product) else {
                throw EmulatorError.stateUnreadable(path: path("chip.json"), detail: "unknown format or product")
            }
            let tcb = try TCBVersion(hex: file.tcb).levels(product.tcbLayout)
            let current = try file.currentTCB.map { try TCBVersion(hex: $0).levels(product.tcbLayout) } ?? tcb
            let reported = try file.reportedTCB.map { try TCBVersion(hex: $0).levels(product.tcbLayout) } ?? tcb
            let askKey = try _RSA.Signing.PrivateKey(
                pemRepresentation: String(decoding: try read("ask.key"), as: UTF8.self))
            return try ChipState(
                product: product, chipID: try Hex.decode(file.chipID, count: 64),
                chipSecret: try Hex.decode(file.chipSecret, count: 32), tcb: tcb, currentTCB: current,
                reportedTCB: reported,
                ark: try AMDCertificate(bytes: try read("ark.pem")),
                ask: try AMDCertificate(bytes: try read("ask.pem")),
                askKey: askKey, arkKeyPEM: String(decoding: try read("ark.key"), as: UTF8.self))
        } catch let error as EmulatorError {
            throw error
        } catch {
            throw .stateUnreadable(path: directory, detail: "\(error)")
        }
    }

    /// The VCEK certificate for `tcb`, minted once and kept as `vcek-<tcb hex>.der`.
    public func vcek(for state: ChipState, tcb: TCBLevels) throws(EmulatorError) -> AMDCertificate {
        let name = "vcek-\(TCBVersion(tcb, layout: state.product.tcbLayout).hex).der"
        if let bytes = try? read(name), let certificate = try? AMDCertificate(derEncoded: bytes) { return certificate }
        do {
            let certificate = try state.mintVCEK(for: tcb)
            try write(certificate.derRepresentation, to: name, secret: false)
            return certificate
        } catch let error as EmulatorError {
            throw error
        } catch {
            throw .stateUnwritable(path: path(name), detail: "\(error)")
        }
    }

    private func read(_ name: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path(name)) else {
            throw EmulatorError.stateUnreadable(path: path(name), detail: "missing or unreadable")
        }
        return Array(data)
    }

    private func write(_ bytes: [UInt8], to name: String, secret: Bool) throws {
        let target = path(name)
        let temporary = target + ".tmp"
        guard
            FileManager.default.createFile(
                atPath: temporary, contents: Data(bytes), attributes: [.posixPermissions: secret ? 0o600 : 0o644])
        else { throw EmulatorError.stateUnwritable(path: temporary, detail: "cannot create the file") }
        // rename(2) replaces an existing target atomically.
        guard rename(temporary, target) == 0 else {
            throw EmulatorError.stateUnwritable(path: target, detail: String(cString: strerror(errno)))
        }
    }
}
