import Testing

@testable import Boot

@Suite struct ModuleIndexTests {
    /// An excerpt of the Debian 6.1 kernel's modules.dep (DESIGN §8), in depmod's order.
    static let dependencies = """
        kernel/drivers/virtio/virtio_ring.ko:
        kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
        kernel/drivers/virtio/virtio_pci_modern_dev.ko:
        kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/net/core/failover.ko:
        kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
        kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
        kernel/drivers/md/dm-mod.ko:
        kernel/drivers/md/dm-crypt.ko: kernel/drivers/md/dm-mod.ko
        kernel/lib/crc16.ko:
        kernel/fs/mbcache.ko:
        kernel/fs/jbd2/jbd2.ko:
        kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
        kernel/crypto/af_alg.ko:
        kernel/crypto/algif_skcipher.ko: kernel/crypto/af_alg.ko
        kernel/drivers/virt/coco/sev-guest/sev-guest.ko.zst:

        """

    static let builtin = "kernel/crypto/hmac.ko\nkernel/crypto/sha256_generic.ko\n"

    let index = try! ModuleIndex(dependencyFile: dependencies, builtinFile: builtin)

    func loads(_ steps: [ModuleIndex.Step]) -> [String] {
        steps.compactMap { if case .load(let name, _) = $0 { name } else { nil } }
    }

    @Test func namesAreTheKernelsSpellingOfTheFileName() {
        #expect(ModuleIndex.name(ofPath: "kernel/drivers/md/dm-crypt.ko") == "dm_crypt")
        #expect(ModuleIndex.name(ofPath: "kernel/drivers/virt/coco/sev-guest/sev-guest.ko.zst") == "sev_guest")
        #expect(ModuleIndex.name(ofPath: "kernel/crypto/xts.ko.xz") == "xts")
        #expect(ModuleIndex.normalise("dm-mod") == "dm_mod")
    }

    @Test func dependenciesLoadFirstInModulesDepOrder() throws {
        #expect(
            loads(try index.plan(["virtio_pci"])) == [
                "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
            ])
        #expect(loads(try index.plan(["ext4"])) == ["jbd2", "mbcache", "crc16", "ext4"])
    }

    @Test func eachModuleLoadsOnceAcrossTheList() throws {
        let order = loads(try index.plan(["virtio_blk", "virtio_net", "dm-crypt", "dm_mod", "virtio_blk"]))
        #expect(
            order == [
                "virtio_ring", "virtio", "virtio_blk", "failover", "net_failover", "virtio_net", "dm_mod", "dm_crypt",
            ])
        #expect(Set(order).count == order.count)
    }

    @Test func everyModuleComesAfterAllItsDependencies() throws {
        let steps = try index.plan(["virtio_pci", "virtio_blk", "virtio_net", "dm_crypt", "ext4", "algif_skcipher"])
        let order = loads(steps)
        for case .load(let name, let path) in steps {
            for dependency in index.dependencies[path] ?? [] {
                let position = order.firstIndex(of: ModuleIndex.name(ofPath: dependency))
                #expect(position != nil && position! < order.firstIndex(of: name)!, "\(dependency) before \(name)")
            }
        }
    }

    @Test func builtinAndOptionalModulesNeedNoFile() throws {
        let steps = try index.plan(["hmac", "aesni_intel?", "af_alg"])
        #expect(
            steps == [
                .builtin(name: "hmac"), .absent(name: "aesni_intel"),
                .load(name: "af_alg", path: "kernel/crypto/af_alg.ko"),
            ])
    }

    @Test func anUnknownModuleIsAnError() {
        #expect(throws: ModuleError.unknownModule("dm_integrity")) { try index.plan(["dm_integrity"]) }
    }

    @Test func aCycleIsReportedInsteadOfRecursingForever() throws {
        let cyclic = try ModuleIndex(dependencyFile: "a.ko: b.ko\nb.ko: a.ko\n")
        #expect(throws: ModuleError.dependencyCycle(["a", "b", "a"])) { try cyclic.plan(["a"]) }
    }

    @Test func aDependencyMissingFromTheIndexIsAnError() throws {
        let broken = try ModuleIndex(dependencyFile: "a.ko: gone.ko\n")
        #expect(throws: ModuleError.missingDependency(module: "a", path: "gone.ko")) { try broken.plan(["a"]) }
    }

    @Test func aLineWithoutColonIsMalformed() {
        #expect(throws: ModuleError.malformedIndex(line: 2, text: "broken")) {
            try ModuleIndex(dependencyFile: "a.ko:\nbroken\n")
        }
    }

    @Test func compressedModulesLoadOnlyWhenTheKernelDecompressesThatFormat() throws {
        let directory = try TemporaryDirectory()
        let step = ModuleIndex.Step.load(name: "sev_guest", path: "kernel/sev-guest.ko.zst")
        var loader = ModuleLoader(root: directory.path, compressionFile: directory.path + "/none")
        #expect(throws: ModuleError.compressionUnsupported(module: "sev_guest", format: "zstd", kernelSupports: nil)) {
            try loader.perform(step, release: "6.1", optional: false)
        }
        try directory.write("xz\n", to: "compression")
        loader.compressionFile = directory.path + "/compression"
        let refused = #expect(throws: ModuleError.self) { try loader.perform(step, release: "6.1", optional: false) }
        #expect(refused?.description == "sev_guest is zstd-compressed and the kernel decompresses only xz")
        // With zstd support the loader goes on to open the file (absent here).
        try directory.write("zstd\n", to: "compression")
        let missing = #expect(throws: ModuleError.self) { try loader.perform(step, release: "6.1", optional: false) }
        guard case .loadFailed(_, let path, let error)? = missing else {
            Issue.record("expected loadFailed, got \(String(describing: missing))")
            return
        }
        #expect(path == directory.path + "/6.1/kernel/sev-guest.ko.zst")
        #expect(error.call == "open")
    }

    static let debianModules = "/lib/modules/6.1.0-57-amd64"

    @Test(.enabled(if: Files.exists(debianModules + "/modules.dep")))
    func theDefaultModulesResolveAgainstTheDebianGuestKernel() throws {
        let index = try ModuleIndex(
            dependencyFile: try Files.readText(Self.debianModules + "/modules.dep"),
            builtinFile: try Files.readText(Self.debianModules + "/modules.builtin"))
        var config = BootConfig()
        config.integrity = true
        let steps = try index.plan(config.effectiveModules)
        let order = loads(steps)
        for required in [
            "dm_mod", "dm_crypt", "ecb", "xts", "ext4", "sev_guest", "evdev", "button", "virtio_net", "dm_integrity",
        ] {
            #expect(order.contains(required), "\(required)")
        }
        #expect(order.firstIndex(of: "virtio_ring")! < order.firstIndex(of: "virtio")!)
        #expect(order.firstIndex(of: "dm_mod")! < order.firstIndex(of: "dm_crypt")!)
        #expect(order.firstIndex(of: "jbd2")! < order.firstIndex(of: "ext4")!)
    }
}
