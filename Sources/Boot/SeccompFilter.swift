import CLinux

/// The service's seccomp filter, built in C (`clinux_seccomp_build`) and installed between fork and exec: x86_64
/// only (another architecture, or an x32 call, kills the process), EPERM for the calls below, ENOSYS for clone3
/// (so glibc falls back to clone, whose flags it can read) and EPERM for a clone that makes a namespace.
enum SeccompFilter {
    /// The names of the refused calls, as the filter lists them.
    static var denied: [String] {
        (0..<clinux_seccomp_denied_count()).compactMap { clinux_seccomp_denied_name($0).map { String(cString: $0) } }
    }
}
