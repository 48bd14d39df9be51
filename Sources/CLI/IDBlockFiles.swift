import Foundation
import SNP

/// Reading what 'vhsm idblock create' writes, for 'vhsm idblock verify' and the emulator's --id-block.
extension IDBlockInputs {
    /// The ID block and ID authentication in `directory`: the raw files, else their base64 forms.
    static func load(_ directory: String) throws -> (SNP.IDBlock, IDAuthentication) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw CLIError.input(directory, "no such directory")
        }
        guard isDirectory.boolValue else {
            throw CLIError.input(directory, "is a file; give the directory 'vhsm idblock create --out' wrote")
        }
        let (blockPath, blockBytes) = try read(
            directory, IDBlockInputs.blockBinary, IDBlockInputs.blockBase64, structure: "an ID_BLOCK",
            size: SNP.IDBlock.byteCount)
        let (authPath, authBytes) = try read(
            directory, IDBlockInputs.authBinary, IDBlockInputs.authBase64, structure: "an ID_AUTH_INFO",
            size: IDAuthentication.byteCount)
        let block: SNP.IDBlock
        do { block = try SNP.IDBlock(bytes: blockBytes) } catch {
            throw CLIError.refused("\(blockPath): not a valid ID_BLOCK: \(error)")
        }
        let auth: IDAuthentication
        do { auth = try IDAuthentication(bytes: authBytes) } catch {
            throw CLIError.refused("\(authPath): not a valid ID_AUTH_INFO: \(error)")
        }
        return (block, auth)
    }

    /// The raw file when it exists, else the base64 one; exactly `size` bytes either way.
    private static func read(
        _ directory: String, _ binary: String, _ base64: String, structure: String, size: Int
    ) throws -> (String, [UInt8]) {
        let binaryPath = IDBlockInputs.path(directory, binary)
        let base64Path = IDBlockInputs.path(directory, base64)
        let path: String
        let bytes: [UInt8]
        if FileManager.default.fileExists(atPath: binaryPath) {
            path = binaryPath
            bytes = try Inputs.read(binaryPath)
        } else if FileManager.default.fileExists(atPath: base64Path) {
            path = base64Path
            let text = String(decoding: try Inputs.read(base64Path), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard let data = Data(base64Encoded: text) else {
                throw CLIError.input(base64Path, "is not base64 (expected one line, as 'vhsm idblock create' writes)")
            }
            bytes = Array(data)
        } else {
            throw CLIError.input(
                directory, "has neither \(binary) nor \(base64); was it written by 'vhsm idblock create'?")
        }
        guard bytes.count == size else {
            throw CLIError.input(
                path, "is \(bytes.count) bytes; \(structure) is exactly \(size) (0x\(String(size, radix: 16))) bytes")
        }
        return (path, bytes)
    }
}
