import Glibc

/// Owners and modes PID 1 sets before the service starts: the service's trees become its own, the Secure
/// Processor's device root's alone.
enum Ownership {
    /// lchown's `path` and, for a directory, everything below it on the same filesystem to `user` (symlinks are
    /// changed, never followed; a missing path is nothing to do). Returns the failures.
    static func give(_ path: String, to user: BootConfig.ServiceUser) -> [String] {
        var info = stat()
        guard lstat(path, &info) == 0 else { return errno == ENOENT ? [] : [SystemError("lstat", path).description] }
        var failures: [String] = []
        give(path, device: info.st_dev, to: user, failures: &failures)
        return failures
    }

    private static func give(_ path: String, device: UInt, to user: BootConfig.ServiceUser, failures: inout [String]) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            failures.append(SystemError("lstat", path).description)
            return
        }
        guard info.st_dev == device else { return }
        if lchown(path, user.uid, user.gid) != 0 { failures.append(SystemError("lchown", path).description) }
        guard info.st_mode & S_IFMT == S_IFDIR else { return }
        let names: [String]
        do throws(SystemError) { names = try Files.list(path) } catch {
            failures.append(error.description)
            return
        }
        for name in names {
            give(path == "/" ? "/\(name)" : "\(path)/\(name)", device: device, to: user, failures: &failures)
        }
    }

    /// A device node PID 1 keeps to itself: owner root, mode 0600. A missing node is nothing to do.
    static func restrictToRoot(_ path: String) throws(SystemError) {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw SystemError("stat", path)
        }
        guard chown(path, 0, 0) == 0 else { throw SystemError("chown", path) }
        guard chmod(path, 0o600) == 0 else { throw SystemError("chmod", path) }
    }

    /// `/run/vhsm`: root's, group `gid`, mode 0710 (the service may reach the socket inside, not list or change it).
    static func runDirectory(_ path: String, group gid: UInt32) throws(SystemError) {
        if mkdir(path, 0o710) != 0, errno != EEXIST { throw SystemError("mkdir", path) }
        guard chown(path, 0, gid) == 0 else { throw SystemError("chown", path) }
        guard chmod(path, 0o710) == 0 else { throw SystemError("chmod", path) }
    }
}
