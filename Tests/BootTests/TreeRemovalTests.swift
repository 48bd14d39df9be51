import Glibc
import Testing

@testable import Boot

@Suite struct TreeRemovalTests {
    func tree() throws -> TemporaryDirectory {
        let root = try TemporaryDirectory()
        try root.write("#!/bin/sh\n", to: "init")
        try root.write("x", to: "lib/modules/6.1/modules.dep")
        try root.write("y", to: "etc/vhsm/init.json")
        try root.write("keep", to: "sysroot/sbin/init")
        try root.write("node", to: "dev/console")
        try root.makeDirectory("empty")
        return root
    }

    @Test func everythingOnTheRootDeviceGoesAndTheRootStays() throws {
        let root = try tree()
        let report = TreeRemoval().removeContents(of: root.path)
        #expect(try Files.list(root.path).isEmpty)
        #expect(report.failures.isEmpty)
        #expect(report.keptMounts.isEmpty)
        #expect(report.removed == 14)
    }

    @Test func entriesOnAnotherDeviceAreNeitherEnteredNorRemoved() throws {
        let root = try tree()
        // Pretend sysroot and dev are mount points, as after mounting the new root and before moving /dev.
        let mounts = ["\(root.path)/sysroot", "\(root.path)/dev"]
        var removal = TreeRemoval()
        removal.device = { path in mounts.contains(path) ? 99 : TreeRemoval.lstatDevice(path) }
        let report = removal.removeContents(of: root.path)
        #expect(try Files.list(root.path) == ["dev", "sysroot"])
        #expect(Files.exists("\(root.path)/sysroot/sbin/init"))
        #expect(Files.exists("\(root.path)/dev/console"))
        #expect(report.keptMounts == mounts.sorted())
        #expect(report.failures.isEmpty)
    }

    @Test func aParentOfAKeptMountStaysWithoutAFailure() throws {
        let root = try TemporaryDirectory()
        try root.write("data", to: "var/lib/vhsm/store.db")
        try root.write("log", to: "var/log/boot")
        var removal = TreeRemoval()
        removal.device = { path in path.hasSuffix("/var/lib/vhsm") ? 42 : TreeRemoval.lstatDevice(path) }
        let report = removal.removeContents(of: root.path)
        #expect(report.failures.isEmpty)
        #expect(try Files.list(root.path + "/var") == ["lib"])
        #expect(Files.exists(root.path + "/var/lib/vhsm/store.db"))
    }

    @Test func symbolicLinksAreRemovedNotFollowed() throws {
        let outside = try TemporaryDirectory()
        try outside.write("precious", to: "file")
        let root = try TemporaryDirectory()
        #expect(symlink(outside.path, root.path + "/link") == 0)
        let report = TreeRemoval().removeContents(of: root.path)
        #expect(report.removed == 1)
        #expect(Files.exists(outside.path + "/file"))
    }
}
