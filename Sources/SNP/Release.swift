/// The release of vhsm that this build is: `vhsm --version`, `vhsmd --version`, `sys/health`'s `version`, and the
/// Debian package's version (`make deb` reads it from this file).
public enum Release {
    public static let version = "0.1.0"
}
