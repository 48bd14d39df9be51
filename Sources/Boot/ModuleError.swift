/// Why a kernel module could not be loaded.
enum ModuleError: Error, Equatable, CustomStringConvertible {
    case malformedIndex(line: Int, text: String)
    case unknownModule(String)
    case missingDependency(module: String, path: String)
    case dependencyCycle([String])
    /// A compressed module the running kernel cannot decompress (no CONFIG_MODULE_DECOMPRESS for that format).
    case compressionUnsupported(module: String, format: String, kernelSupports: String?)
    case loadFailed(module: String, path: String, error: SystemError)

    var description: String {
        switch self {
        case .malformedIndex(let line, let text): "modules.dep line \(line) has no ':': '\(text)'"
        case .unknownModule(let name): "module '\(name)' is neither in modules.dep nor in modules.builtin"
        case .missingDependency(let module, let path): "\(module) needs \(path), which modules.dep does not list"
        case .dependencyCycle(let chain): "modules.dep has a dependency cycle: \(chain.joined(separator: " → "))"
        case .compressionUnsupported(let module, let format, let supported):
            "\(module) is \(format)-compressed and the kernel "
                + (supported.map { "decompresses only \($0)" } ?? "decompresses no modules (no /sys/module/compression)")
        case .loadFailed(let module, let path, let error): "finit_module \(module) (\(path)): \(error.reason)"
        }
    }
}
