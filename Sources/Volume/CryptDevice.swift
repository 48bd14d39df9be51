internal import CCryptsetup
internal import Crypto
internal import Glibc
internal import Synchronization
internal import SystemPackage

/// The only file that calls libcryptsetup: LUKS2 volumes and the dm-verity root (`VerityRoot`) alike.
///
/// libcryptsetup is not thread-safe, so every use goes through `CryptLibrary.run`, which holds one process-wide
/// lock; inside it, a `CryptDevice` (non-Sendable, freed in `deinit`) owns one `struct crypt_device *`.
/// Before the first use, external token plugins are disabled (nothing in a host-writable header can make the
/// library dlopen code) and the library's log goes to `CryptLibrary.log` instead of stderr. Debug logging stays
/// off; libcryptsetup never logs passphrases at the levels kept.
enum CryptLibrary {
    private static let lock = Mutex<Void>(())
    private static let messages = Mutex<[String]>([])

    /// Runs once, before the first libcryptsetup call.
    private static let setUp: Void = {
        crypt_token_external_disable()
        crypt_set_debug_level(CRYPT_DEBUG_NONE)
        crypt_set_log_callback(nil, CryptLibrary.callback, nil)
    }()

    /// libcryptsetup's log callback: keeps the last few error and normal lines, shortened, for error messages.
    private static let callback: @convention(c) (CInt, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
        level, message, _ in
        guard level == CRYPT_LOG_ERROR || level == CRYPT_LOG_NORMAL, let message else { return }
        var line = String(cString: message)
        while line.last == "\n" { line.removeLast() }
        guard !line.isEmpty else { return }
        let kept = String(line.prefix(200))
        CryptLibrary.messages.withLock { lines in
            lines.append(kept)
            if lines.count > 8 { lines.removeFirst(lines.count - 8) }
        }
    }

    /// The messages logged since the current operation started.
    static var log: [String] { messages.withLock { $0 } }

    /// Serialises `body` with every other libcryptsetup user in the process.
    static func run<Result>(_ body: () throws(VolumeError) -> Result) throws(VolumeError) -> Result {
        _ = setUp
        let outcome: Swift.Result<Result, VolumeError> = lock.withLock { _ in
            messages.withLock { $0.removeAll() }
            do throws(VolumeError) { return .success(try body()) } catch { return .failure(error) }
        }
        return try outcome.get()
    }

    /// Deactivates the dm-crypt mapping `name`.
    static func deactivate(name: String) throws(VolumeError) {
        try run { () throws(VolumeError) in try deactivateUnlocked(name: name) }
    }

    /// `deactivate` for callers already inside `run`.
    static func deactivateUnlocked(name: String) throws(VolumeError) {
        let rc = crypt_deactivate(nil, name)
        guard rc == 0 else {
            throw .cryptsetup(path: "/dev/mapper/\(name)", operation: "deactivate", Errno(rawValue: -rc), log: log)
        }
    }
}

/// Options for activating the data segment.
public struct UnlockOptions: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let readOnly = UnlockOptions(rawValue: CCRYPT_ACTIVATE_READONLY)
    public static let allowDiscards = UnlockOptions(rawValue: CCRYPT_ACTIVATE_ALLOW_DISCARDS)
    /// dm-crypt workqueue bypass (better latency on virtual disks).
    public static let noReadWorkqueue = UnlockOptions(rawValue: CCRYPT_ACTIVATE_NO_READ_WORKQUEUE)
    public static let noWriteWorkqueue = UnlockOptions(rawValue: CCRYPT_ACTIVATE_NO_WRITE_WORKQUEUE)
    /// Hidden from udev and `dmsetup ls` listings meant for users (the integrity wipe uses it).
    public static let `private` = UnlockOptions(rawValue: CCRYPT_ACTIVATE_PRIVATE)
    /// dm-integrity without its journal: only for the one-time wipe.
    public static let noJournal = UnlockOptions(rawValue: CCRYPT_ACTIVATE_NO_JOURNAL)
}

/// Owns one `struct crypt_device *`. Use only inside `CryptLibrary.run`.
final class CryptDevice {
    /// What error messages call the device (the data device, never the memfd path).
    let path: String
    private let handle: OpaquePointer

    /// A device or image whose header is on the device itself (format only).
    init(device: String) throws(VolumeError) {
        var handle: OpaquePointer?
        let rc = crypt_init(&handle, device)
        guard rc == 0, let handle else {
            throw .cryptsetup(path: device, operation: "open", Errno(rawValue: -rc), log: CryptLibrary.log)
        }
        self.path = device
        self.handle = handle
    }

    /// A validated header copy (`header`, a memfd path) for the data on `data`.
    convenience init(header: String, data: String) throws(VolumeError) {
        try self.init(metadata: header, data: data, operation: "open with its header copy")
    }

    /// A dm-verity hash tree on `hash` for the data on `data` (`crypt_init_data_device(hash, data)`; they may be
    /// the same device). Nothing is read until `formatVerity`.
    convenience init(verityHash hash: String, data: String) throws(VolumeError) {
        try self.init(metadata: hash, data: data, operation: "open with its hash device \(hash)")
    }

    /// `crypt_init_data_device(metadata, data)`; `operation` names it in the error.
    private init(metadata: String, data: String, operation: String) throws(VolumeError) {
        var handle: OpaquePointer?
        let rc = crypt_init_data_device(&handle, metadata, data)
        guard rc == 0, let handle else {
            throw .cryptsetup(path: data, operation: operation, Errno(rawValue: -rc), log: CryptLibrary.log)
        }
        self.path = data
        self.handle = handle
    }

    deinit { crypt_free(handle) }

    private func check(_ rc: CInt, _ operation: String) throws(VolumeError) {
        guard rc >= 0 else {
            throw .cryptsetup(path: path, operation: operation, Errno(rawValue: -rc), log: CryptLibrary.log)
        }
    }

    /// PBKDF2-SHA256, `Layout.pbkdf2Iterations`, no benchmark: for every keyslot added afterwards.
    func usePBKDF2() throws(VolumeError) {
        let rc = CRYPT_KDF_PBKDF2.withCString { type in
            "sha256".withCString { hash in
                var pbkdf = crypt_pbkdf_type(
                    type: type, hash: hash, time_ms: 0, iterations: UInt32(Layout.pbkdf2Iterations),
                    max_memory_kb: 0, parallel_threads: 0, flags: CCRYPT_PBKDF_NO_BENCHMARK)
                return crypt_set_pbkdf_type(handle, &pbkdf)
            }
        }
        try check(rc, "set PBKDF2-SHA256 for")
    }

    /// `crypt_format` LUKS2 with `Layout`: metadata size, aes-xts-plain64, 4096-byte sectors, data at 2 MiB.
    /// `label` and `subsystem` go into both binary headers (the provisioning mark).
    func formatLUKS2(uuid: String, integrity: Bool, label: String? = nil, subsystem: String? = nil) throws(VolumeError)
    {
        try check(
            crypt_set_metadata_size(handle, UInt64(Layout.metadataSize), UInt64(Layout.keyslotsAreaSize)),
            "set the metadata size of")
        try usePBKDF2()
        let keyBytes = Layout.volumeKeyBytes + (integrity ? Layout.integrityKeyBytes : 0)
        let rc = CRYPT_LUKS2.withCString { type in
            Layout.integrity.withCString { integrityName in
                var params = crypt_params_luks2()
                params.integrity = integrity ? integrityName : nil
                params.data_alignment = Layout.headerAreaSize / 512
                params.sector_size = UInt32(Layout.sectorSize)
                return withOptionalCString(label) { label in
                    withOptionalCString(subsystem) { subsystem in
                        params.label = label
                        params.subsystem = subsystem
                        return crypt_format(handle, type, "aes", "xts-plain64", uuid, nil, keyBytes, &params)
                    }
                }
            }
        }
        try check(rc, "format (LUKS2, aes-xts-plain64\(integrity ? ", hmac(sha256)" : ""))")
    }

    /// Empties the label and subsystem of both binary headers (`crypt_set_label(cd, NULL, NULL)`).
    func clearLabel() throws(VolumeError) {
        try check(crypt_set_label(handle, nil, nil), "clear the label of")
    }

    /// `crypt_load` of a LUKS2 header, and no `requirements` flags (reencryption) set.
    func load() throws(VolumeError) {
        try check(CRYPT_LUKS2.withCString { crypt_load(handle, $0, nil) }, "load the LUKS2 header of")
        var flags: UInt32 = 0
        try check(crypt_persistent_flags_get(handle, CRYPT_FLAGS_REQUIREMENTS, &flags), "read the requirements of")
        guard flags == 0 else {
            throw .headerRejected(
                path: path, field: "requirements flags", found: String(flags, radix: 16), expected: "none")
        }
    }

    /// A keyslot for the volume key that `formatLUKS2` generated. Returns the keyslot number.
    func addKeyslotForNewVolumeKey(passphrase: SymmetricKey) throws(VolumeError) -> Int {
        let rc = passphrase.withUnsafeBytes { pass in
            crypt_keyslot_add_by_volume_key(
                handle, CRYPT_ANY_SLOT, nil, 0, pass.baseAddress?.assumingMemoryBound(to: CChar.self), pass.count)
        }
        try check(rc, "add a keyslot to")
        return Int(rc)
    }

    /// A keyslot for `new`, unlocking the volume key with `existing` (which must open a keyslot).
    func addKeyslot(existing: SymmetricKey, new: SymmetricKey) throws(VolumeError) -> Int {
        let rc = existing.withUnsafeBytes { old in
            new.withUnsafeBytes { new in
                crypt_keyslot_add_by_passphrase(
                    handle, CRYPT_ANY_SLOT, old.baseAddress?.assumingMemoryBound(to: CChar.self), old.count,
                    new.baseAddress?.assumingMemoryBound(to: CChar.self), new.count)
            }
        }
        if rc == -EPERM { throw .wrongKey(path: path, keyslot: nil) }
        try check(rc, "add a keyslot to")
        return Int(rc)
    }

    /// Activates `name` from `keyslot`, or only checks the passphrase when `name` is nil. Returns the keyslot.
    @discardableResult
    func activate(
        name: String?, keyslot: Int, passphrase: SymmetricKey, options: UnlockOptions = []
    ) throws(VolumeError) -> Int {
        let rc = passphrase.withUnsafeBytes { pass in
            crypt_activate_by_passphrase(
                handle, name, CInt(keyslot), pass.baseAddress?.assumingMemoryBound(to: CChar.self), pass.count,
                options.rawValue)
        }
        if rc == -EPERM || rc == -ENOENT { throw .wrongKey(path: path, keyslot: keyslot) }
        try check(rc, name.map { "activate '\($0)' from" } ?? "check a key of")
        return Int(rc)
    }

    func destroyKeyslot(_ keyslot: Int) throws(VolumeError) {
        try check(crypt_keyslot_destroy(handle, CInt(keyslot)), "destroy keyslot \(keyslot) of")
    }

    /// Stores a token (`id` nil: the next free one). Returns the token id.
    @discardableResult
    func setToken(id: Int?, json: String) throws(VolumeError) -> Int {
        let rc = crypt_token_json_set(handle, id.map { CInt($0) } ?? CRYPT_ANY_TOKEN, json)
        try check(rc, "store a token in")
        return Int(rc)
    }

    /// Removes token `id` (`crypt_token_json_set` with no JSON).
    func removeToken(id: Int) throws(VolumeError) {
        try check(crypt_token_json_set(handle, CInt(id), nil), "remove token \(id) from")
    }

    /// `crypt_format` of type VERITY with `CRYPT_VERITY_NO_HEADER`: every parameter is the caller's, no superblock
    /// is read or written, no hash is computed (`CRYPT_VERITY_CREATE_HASH` is never set). With `checkHash`, a later
    /// `activateVerity(name: nil, …)` verifies the whole tree in userspace (`CRYPT_VERITY_CHECK_HASH`).
    func formatVerity(
        data: String, hashName: String, hashType: UInt32, blockSize: UInt32, dataBlocks: UInt64, hashOffset: UInt64,
        salt: [UInt8], checkHash: Bool
    ) throws(VolumeError) {
        // A non-null salt pointer even for an empty salt: with none, libcryptsetup would generate a random one.
        let saltBytes = salt.isEmpty ? [0] : salt
        let rc = CRYPT_VERITY.withCString { type in
            hashName.withCString { hash in
                data.withCString { dataPath in
                    saltBytes.withUnsafeBufferPointer { saltBuffer in
                        saltBuffer.withMemoryRebound(to: CChar.self) { saltPointer in
                            var params = crypt_params_verity()
                            params.hash_name = hash
                            params.data_device = dataPath
                            params.salt = saltPointer.baseAddress
                            params.salt_size = UInt32(salt.count)
                            params.hash_type = hashType
                            params.data_block_size = blockSize
                            params.hash_block_size = blockSize
                            params.data_size = dataBlocks
                            params.hash_area_offset = hashOffset
                            params.flags = CCRYPT_VERITY_NO_HEADER | (checkHash ? CCRYPT_VERITY_CHECK_HASH : 0)
                            return crypt_format(handle, type, nil, nil, nil, nil, 0, &params)
                        }
                    }
                }
            }
        }
        try check(rc, "set the dm-verity parameters (\(hashName), \(blockSize)-byte blocks) of")
    }

    /// `crypt_activate_by_volume_key` with the root hash as the key: the read-only dm-verity mapping `name`, or,
    /// with no name, only the userspace check that `formatVerity(checkHash: true)` asked for.
    func activateVerity(name: String?, rootHash: [UInt8]) throws(VolumeError) {
        let rc = rootHash.withUnsafeBufferPointer { hash in
            hash.withMemoryRebound(to: CChar.self) { key in
                crypt_activate_by_volume_key(handle, name, key.baseAddress, key.count, CCRYPT_ACTIVATE_READONLY)
            }
        }
        // The userspace check answers EPERM for a data or hash block and EFAULT for the root hash.
        if rc == -EPERM || rc == -EFAULT, name == nil {
            throw .verityMismatch(path: path, detail: CryptLibrary.log.last ?? "verification failed")
        }
        try check(rc, name.map { "activate the dm-verity mapping '\($0)' of" } ?? "verify the hash tree of")
    }

    /// Zeroes `length` bytes of `device` (a mapped device) in 1 MiB steps, reporting progress.
    /// `progress(done, total)` returns false to stop.
    func wipe(device: String, length: UInt64, progress: (UInt64, UInt64) -> Bool) throws(VolumeError) {
        final class Box {
            let progress: (UInt64, UInt64) -> Bool
            init(_ progress: @escaping (UInt64, UInt64) -> Bool) { self.progress = progress }
        }
        let trampoline: @convention(c) (UInt64, UInt64, UnsafeMutableRawPointer?) -> CInt = { size, offset, context in
            guard let context else { return 0 }
            return Unmanaged<Box>.fromOpaque(context).takeUnretainedValue().progress(offset, size) ? 0 : 1
        }
        let rc = withoutActuallyEscaping(progress) { progress in
            let box = Box(progress)
            return withExtendedLifetime(box) {
                crypt_wipe(
                    handle, device, CRYPT_WIPE_ZERO, 0, length, 1 << 20, 0, trampoline,
                    Unmanaged.passUnretained(box).toOpaque())
            }
        }
        try check(rc, "wipe \(device) for")
    }
}

/// The validated header area in an anonymous RAM file (memfd), reachable by libcryptsetup as
/// `/proc/self/fd/N`. libcryptsetup reads (and, for keyslot changes, writes) only this copy; the device's own
/// header is never read again by the library.
final class HeaderCopy {
    private let descriptor: FileDescriptor

    init(_ area: [UInt8]) throws(VolumeError) {
        let fd = ccrypt_memfd_create("vhsm-luks2-header", CCRYPT_MFD_CLOEXEC)
        guard fd >= 0 else { throw .io(path: "memfd", operation: "create a RAM file for the header copy", .current) }
        descriptor = FileDescriptor(rawValue: fd)
        do { _ = try descriptor.writeAll(toAbsoluteOffset: 0, area) } catch {
            throw .io(path: "memfd", operation: "write the header copy to", error as? Errno ?? .ioError)
        }
    }

    deinit { try? descriptor.close() }

    /// The path libcryptsetup opens.
    var path: String { "/proc/self/fd/\(descriptor.rawValue)" }

    /// The copy as libcryptsetup left it.
    func read() throws(VolumeError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Layout.headerAreaSize)
        let count: Int
        do {
            count = try bytes.withUnsafeMutableBytes { try descriptor.read(fromAbsoluteOffset: 0, into: $0) }
        } catch {
            throw .io(path: "memfd", operation: "read the header copy from", error as? Errno ?? .ioError)
        }
        guard count == bytes.count else {
            throw .io(path: "memfd", operation: "read the whole header copy from", .ioError)
        }
        return bytes
    }
}

extension Errno {
    /// errno of the last failed C call.
    fileprivate static var current: Errno { Errno(rawValue: errno) }
}

/// `body` with a C string for `text`, or with nil.
private func withOptionalCString<Result>(_ text: String?, _ body: (UnsafePointer<CChar>?) -> Result) -> Result {
    guard let text else { return body(nil) }
    return text.withCString { body($0) }
}
