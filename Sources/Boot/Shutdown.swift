import Glibc

/// The end of a supervised run, after every process is gone: sync, unmount the volume, close the mapping.
/// Each step is printed; a failing step is reported and the next one still runs (power goes off anyway).
enum Shutdown {
    static func teardown(_ config: BootConfig, deactivate: () throws -> Void) {
        Console.say("vhsm-init: shutdown: sync")
        sync()
        Console.say("vhsm-init: shutdown: unmount \(config.mountPoint)")
        do {
            if try Mounts.unmount(config.mountPoint) {
                Console.say("vhsm-init: shutdown: \(config.mountPoint) was busy; detached lazily")
            }
        } catch {
            Console.say("vhsm-init: shutdown: \(error)")
        }
        Console.say("vhsm-init: shutdown: close \(config.mapperPath)")
        do { try deactivate() } catch { Console.say("vhsm-init: shutdown: closing \(config.mapperPath): \(error)") }
        sync()
    }
}
