import Glibc

/// Deletes the contents of a directory tree without crossing into other filesystems, as switch_root does to
/// free the initramfs: every entry is lstat'ed (symlinks are removed, never followed), an entry on another
/// device (a mount point: the new root, a moved /dev) is left alone with everything below it, files are
/// unlinked and directories emptied and removed. Failures are collected, not fatal: what cannot be freed only
/// costs memory.
struct TreeRemoval {
    /// The device an entry lives on, from lstat(2); nil when it cannot be read. Tests substitute their own.
    var device: (String) -> UInt64? = TreeRemoval.lstatDevice
    var isDirectory: (String) -> Bool = TreeRemoval.lstatIsDirectory

    struct Report: Equatable {
        var removed = 0
        /// Entries left because they are on another device.
        var keptMounts: [String] = []
        var failures: [String] = []
    }

    /// Removes everything below `root` that lives on `root`'s device; `root` itself stays.
    func removeContents(of root: String) -> Report {
        var report = Report()
        guard let rootDevice = device(root) else {
            report.failures.append("lstat \(root): \(SystemError.describe(errno))")
            return report
        }
        removeContents(of: root, rootDevice: rootDevice, report: &report)
        return report
    }

    private func removeContents(of directory: String, rootDevice: UInt64, report: inout Report) {
        let names: [String]
        do throws(SystemError) { names = try Files.list(directory) } catch {
            report.failures.append(error.description)
            return
        }
        for name in names {
            let path = directory == "/" ? "/\(name)" : "\(directory)/\(name)"
            guard let entryDevice = device(path) else {
                report.failures.append("lstat \(path): \(SystemError.describe(errno))")
                continue
            }
            guard entryDevice == rootDevice else {
                report.keptMounts.append(path)
                continue
            }
            if isDirectory(path) {
                removeContents(of: path, rootDevice: rootDevice, report: &report)
                if rmdir(path) == 0 {
                    report.removed += 1
                } else if errno != ENOTEMPTY && errno != EBUSY {
                    report.failures.append(SystemError("rmdir", path).description)
                }
            } else if unlink(path) == 0 {
                report.removed += 1
            } else {
                report.failures.append(SystemError("unlink", path).description)
            }
        }
    }

    static func lstatDevice(_ path: String) -> UInt64? {
        var info = stat()
        return lstat(path, &info) == 0 ? UInt64(info.st_dev) : nil
    }

    static func lstatIsDirectory(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }
}
