import SNP
import Sealing
import StrictJSON
import Testing

@testable import Boot

@Suite struct BootConfigTests {
    func load(_ json: String?, _ commandLine: String = "") throws(ConfigError) -> BootConfig {
        try BootConfig.load(file: json.map { Array($0.utf8) }, commandLine: KernelCommandLine(commandLine))
    }

    @Test func withoutFileOrParametersTheDefaultsApply() throws {
        let config = try load(nil, "console=ttyS0 quiet")
        #expect(config == BootConfig())
        #expect(config.attestation.effectivePath == "/dev/sev-guest")
        #expect(config.seal == .measurement)
        #expect(config.volume == "/dev/vda")
        #expect(config.mountPoint == "/var/lib/vhsm")
        #expect(config.network.address.description == "10.0.2.15/24")
        #expect(config.network.gateway?.description == "10.0.2.2")
        #expect(config.handoff.service == "/usr/bin/vhsmd")
        #expect(config.failureAction == .halt)
        #expect(config.effectiveModules.contains("sev_guest"))
        #expect(config.effectiveModules.contains("virtio_net"))
        #expect(!config.effectiveModules.contains("virtio_console"))
    }

    /// `handoff.user`: numeric uid:gid (no /etc/passwd in the initramfs), never root.
    @Test func theServiceUserIsNumericAndNeverRoot() throws {
        #expect(try load(nil).handoff.user == BootConfig.ServiceUser(uid: 8200, gid: 8200))
        #expect(
            try load(#"{"handoff": {"user": "1000:1001"}}"#).handoff.user
                == BootConfig.ServiceUser(uid: 1000, gid: 1001))
        #expect(try load(nil, "vhsm.handoff.user=42:43").handoff.user.description == "42:43")
        for bad in [
            "0:0", "8200:0", "0:8200", "vhsmd", "8200", "8200:", ":8200", "-1:5", "8200:8200:1", "4294967295:1",
        ] {
            #expect(throws: ConfigError.self, "\(bad)") { try load(#"{"handoff": {"user": ""# + bad + #""}}"#) }
        }
    }

    @Test func theFileSetsNestedAndScalarKeys() throws {
        let config = try load(
            """
            {
              "attestation": {"provider": "emulator"},
              "seal": "image",
              "volume": "UUID=0A1B2C3D-0000-4000-8000-00000000000F",
              "integrity": true,
              "network": {"interface": "ens3", "address": "192.168.1.5/16", "gateway": null},
              "handoff": {"service": "/usr/bin/vhsmd", "args": ["--config", "/var/lib/vhsm/vhsmd.json"]},
              "restart": {"initial_ms": 100, "max_ms": 800, "fast_limit": 3},
              "on_failure": "reboot",
              "modules": ["virtio_blk", "aesni_intel?"]
            }
            """)
        #expect(config.attestation.provider == .emulator)
        #expect(config.attestation.effectivePath == "/dev/vport0p1")
        #expect(config.seal == .image)
        #expect(config.volume == "UUID=0a1b2c3d-0000-4000-8000-00000000000f")
        #expect(config.integrity)
        #expect(config.network.interface == "ens3")
        #expect(config.network.address.netmask.description == "255.255.0.0")
        #expect(config.network.gateway == nil)
        #expect(config.handoff.arguments == ["--config", "/var/lib/vhsm/vhsmd.json"])
        #expect(config.restart.fastFailureLimit == 3)
        #expect(config.failureAction == .reboot)
        #expect(config.effectiveModules == ["virtio_blk", "aesni_intel?"])
    }

    @Test func theCommandLineOverridesTheFileInOrder() throws {
        let config = try load(
            #"{"seal": "image", "volume": "/dev/vdb", "on_failure": "reboot"}"#,
            #"root=/dev/ram0 vhsm.seal=platform vhsm.volume=/dev/vdc vhsm.on-failure=halt vhsm.seal=measurement"#
                + #" vhsm.handoff.args="--dev --port 8200" vhsm.modules=a,b-c vhsm.integrity vhsm.network=none"#)
        #expect(config.seal == .measurement)
        #expect(config.volume == "/dev/vdc")
        #expect(config.failureAction == .halt)
        #expect(config.handoff.arguments == ["--dev", "--port", "8200"])
        #expect(config.modules == ["a", "b-c"])
        #expect(config.integrity)
        #expect(config.network.mode == .none)
        #expect(!config.effectiveModules.contains("virtio_net"))
    }

    @Test func aSectionGivenAStringSetsItsFirstField() throws {
        let config = try load(#"{"handoff": "switch_root", "attestation": "emulator"}"#, "vhsm.handoff.root=volume")
        #expect(config.handoff.mode == .switchRoot)
        #expect(config.handoff.root == "volume")
        #expect(config.attestation.provider == .emulator)
    }

    @Test(arguments: [
        (#"{"sael": "platform"}"#, "", "sael", "/etc/vhsm/init.json"),
        (#"{"network": {"adress": "10.0.0.1/8"}}"#, "", "network.adress", "/etc/vhsm/init.json"),
        ("{}", "vhsm.volumes=/dev/vda", "volumes", "kernel command line"),
        ("{}", "vhsm.network.gw=10.0.2.2", "network.gw", "kernel command line"),
        ("{}", "vhsm.restart=5", "restart", ""),
    ])
    func unknownKeysAreErrorsNamingTheKey(json: String, commandLine: String, key: String, source: String) {
        let error = #expect(throws: ConfigError.self) { try load(json, commandLine) }
        if source.isEmpty {
            // `restart` is a section without a shorthand field.
            #expect(
                error
                    == .wrongType(
                        key: key, expected: "an object (set restart.<field>)", actual: "a string",
                        source: "kernel command line"))
        } else {
            #expect(error == .unknownKey(key, source: source))
            #expect(
                error?.description.hasPrefix("unknown key '\(key)' in \(source) (known: attestation.provider") == true)
        }
    }

    @Test func valuesOfTheWrongTypeOrShapeAreRefusedWithTheKey() {
        #expect(
            throws: ConfigError.wrongType(
                key: "integrity", expected: "a boolean", actual: "a string", source: "/etc/vhsm/init.json")
        ) {
            try load(#"{"integrity": "yes"}"#)
        }
        #expect(
            throws: ConfigError.invalidValue(
                key: "seal", value: "tpm", expected: "one of 'measurement', 'platform', 'image'",
                source: "kernel command line")
        ) {
            try load(nil, "vhsm.seal=tpm")
        }
        #expect(
            throws: ConfigError.invalidValue(
                key: "network.address", value: "10.0.2.15", expected: "an IPv4 address with prefix, a.b.c.d/n",
                source: "kernel command line")
        ) {
            try load(nil, "vhsm.network.address=10.0.2.15")
        }
        #expect(throws: ConfigError.missingValue(key: "volume", source: "kernel command line")) {
            try load(nil, "vhsm.volume")
        }
        #expect(throws: ConfigError.self) { try load(#"{"volume": "sda"}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"mount": "/var/../etc"}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"mapper": "a/b"}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"recovery_key": "AAAA"}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"restart": {"fast_limit": 0}}"#) }
        #expect(throws: ConfigError.self) { try load(#"{"modules": "dm_crypt"}"#) }
        #expect(
            throws: ConfigError.wrongType(
                key: "(document)", expected: "an object", actual: "an array", source: "/etc/vhsm/init.json")
        ) {
            try load("[]")
        }
    }

    @Test func malformedOrAmbiguousJSONIsRefused() {
        let duplicate = #expect(throws: ConfigError.self) { try load(#"{"seal": "image", "seal": "platform"}"#) }
        #expect(duplicate?.description == "/etc/vhsm/init.json: invalid JSON at byte 18: duplicate key 'seal'")
        #expect(throws: ConfigError.self) { try load(#"{"seal": "image",}"#) }
    }

    @Test func theEmulatorIsAcceptedOnlyByAnEmulatorBuild() throws {
        let config = try load(#"{"attestation": "emulator"}"#)
        #expect(throws: Never.self) { try config.validate(emulatorAvailable: true) }
        let error = #expect(throws: ConfigError.self) { try config.validate(emulatorAvailable: false) }
        #expect(error?.description.contains("needs a test build of vhsm-init (SwiftPM trait Emulator)") == true)
        #expect(config.effectiveModules.contains("virtio_console"))
    }

    @Test func combinationsThatCannotWorkAreRefused() throws {
        #expect(throws: ConfigError.self) { try load(#"{"attestation": "tsm"}"#).validate(emulatorAvailable: true) }
        #expect(throws: ConfigError.self) {
            try load(#"{"handoff": "switch_root"}"#).validate(emulatorAvailable: false)
        }
        #expect(throws: ConfigError.self) {
            try load(#"{"restart": {"initial_ms": 5000, "max_ms": 100}}"#).validate(emulatorAvailable: false)
        }
        #expect(throws: ConfigError.self) { try load(#"{"mount": "/"}"#).validate(emulatorAvailable: false) }
        #expect(throws: Never.self) { try load(nil).validate(emulatorAvailable: false) }
    }

    @Test func minTCBAndAllowSMTComeFromTheFileOrTheCommandLine() throws {
        let defaults = try load(nil)
        #expect(defaults.minimumTCB == nil && !defaults.allowSMT)
        #expect(defaults.sealing == SealingRequirements(minimumTCB: nil, allowSMT: false))
        let file = try load(#"{"min_tcb": "0400000000001adb", "allow_smt": true}"#)
        #expect(
            file.sealing == SealingRequirements(minimumTCB: try TCBVersion(hex: "0400000000001adb"), allowSMT: true))
        let overridden = try load(
            #"{"min_tcb": "0400000000001adb", "allow_smt": true}"#, "vhsm.allow-smt=0 vhsm.min_tcb=0300000000000873")
        #expect(overridden.minimumTCB == (try TCBVersion(hex: "0300000000000873")))
        #expect(!overridden.allowSMT)
        #expect(try load(nil, "vhsm.allow_smt").allowSMT)
        #expect(try load(#"{"min_tcb": null}"#).minimumTCB == nil)
        #expect(
            throws: ConfigError.invalidValue(
                key: "min_tcb", value: "04",
                expected: "a TCB_VERSION: 16 hex digits, the 8 bytes in report order (e.g. 0300000000000873)",
                source: "kernel command line")
        ) {
            try load(nil, "vhsm.min_tcb=04")
        }
        #expect(throws: ConfigError.self) { try load(#"{"allow_smt": "yes"}"#) }
    }

    @Test func theEffectiveConfigurationReadsBackToTheSameValues() throws {
        let original = try load(
            #"{"seal": "platform", "integrity": true, "handoff": {"args": ["-v"]}, "network": {"gateway": "none"}, "min_tcb": "0400000000001adb", "allow_smt": true}"#,
            "vhsm.recovery_key=\"-----BEGIN PUBLIC KEY----- x -----END PUBLIC KEY-----\"")
        let rendered = original.json.rendered()
        let reread = try load(rendered)
        #expect(reread.json == original.json)
        #expect(reread.effectiveModules == original.effectiveModules)
        #expect(rendered.contains(#""gateway": null"#))
        #expect(rendered.contains(#""min_tcb": "0400000000001adb""#) && rendered.contains(#""allow_smt": true"#))
        #expect(reread.sealing == original.sealing)
        #expect(rendered.hasPrefix("{\n  \"attestation\": {\n    \"provider\": \"sev-guest\""))
    }
}
