import CLinux
import Glibc

/// Loads kernel modules from `/lib/modules/<release>/` with finit_module(2), in `ModuleIndex` order, without
/// kmod.
struct ModuleLoader {
    var root = "/lib/modules"
    /// Names the one format the kernel decompresses itself (CONFIG_MODULE_DECOMPRESS); absent without it.
    var compressionFile = "/sys/module/compression"

    /// What happened to one module, for the console.
    enum Outcome: Equatable {
        case loaded, alreadyLoaded, builtin, absent
        /// An optional module the kernel refused (ENODEV: e.g. `aesni_intel` on a CPU without AES-NI).
        case skipped(String)
    }

    /// The running kernel's release, `uname -r`.
    static func kernelRelease() throws(SystemError) -> String {
        var name = utsname()
        guard uname(&name) == 0 else { throw SystemError("uname", "") }
        return withUnsafePointer(to: name.release) {
            $0.withMemoryRebound(to: CChar.self, capacity: 65) { String(cString: $0) }
        }
    }

    /// Reads the index of the running kernel.
    func index(release: String) throws(BootError) -> ModuleIndex {
        let directory = "\(root)/\(release)"
        let dependencies: String
        do throws(SystemError) { dependencies = try Files.readText("\(directory)/modules.dep") } catch {
            throw BootError(
                stage: .modules, cause: error.description,
                next: "the initramfs must carry \(directory)/modules.dep for kernel \(release)")
        }
        let builtin = (try? Files.readText("\(directory)/modules.builtin")) ?? ""
        do throws(ModuleError) { return try ModuleIndex(dependencyFile: dependencies, builtinFile: builtin) } catch {
            throw BootError(stage: .modules, cause: error.description, next: "regenerate modules.dep with depmod")
        }
    }

    /// Stops the kernel from running a usermode modprobe for on-demand requests (there is none in the initramfs;
    /// an empty path makes request_module() return at once). The modules dm-crypt asks for are loaded here
    /// instead. `restoreKernelModprobe()` undoes this before a switch_root.
    static func disableKernelModprobe() throws(SystemError) {
        try Files.write("\n", to: "/proc/sys/kernel/modprobe")
    }

    static func restoreKernelModprobe() throws(SystemError) {
        try Files.write("/sbin/modprobe\n", to: "/proc/sys/kernel/modprobe")
    }

    /// Carries out one step.
    func perform(_ step: ModuleIndex.Step, release: String, optional: Bool) throws(ModuleError) -> Outcome {
        switch step {
        case .builtin: return .builtin
        case .absent: return .absent
        case .load(let name, let path):
            let flags = try compressionFlags(module: name, path: path)
            let fullPath = "\(root)/\(release)/\(path)"
            let fd = open(fullPath, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw .loadFailed(module: name, path: fullPath, error: SystemError("open", fullPath)) }
            defer { close(fd) }
            let result = clinux_finit_module(fd, "", flags)
            switch -result {
            case 0: return .loaded
            case EEXIST: return .alreadyLoaded
            case ENODEV where optional: return .skipped(SystemError.describe(ENODEV))
            default:
                throw .loadFailed(
                    module: name, path: fullPath, error: SystemError("finit_module", name, errno: -result))
            }
        }
    }

    /// MODULE_INIT_COMPRESSED_FILE for `.ko.xz` / `.ko.zst` / `.ko.gz` when the kernel decompresses that format
    /// itself (`compressionFile`); an error otherwise.
    private func compressionFlags(module: String, path: String) throws(ModuleError) -> Int32 {
        let formats = [(".ko.xz", "xz"), (".ko.zst", "zstd"), (".ko.gz", "gzip")]
        guard let format = formats.first(where: { path.hasSuffix($0.0) })?.1 else { return 0 }
        let supported = (try? Files.readText(compressionFile))?.filter { !$0.isWhitespace }
        guard supported == format else {
            throw .compressionUnsupported(module: module, format: format, kernelSupports: supported)
        }
        return CLINUX_MODULE_INIT_COMPRESSED_FILE
    }
}
