import Crypto

/// The PSP's guest context launch digest, GCTX.LD (SHA-384, 48 bytes), replayed offline: every launch update
/// folds one PAGE_INFO into it. The PAGE_INFO buffer is kept and rewritten in place, its first 48 bytes
/// being the current digest, so an update allocates nothing.
struct GuestContext {
    /// The GPA the RMP records for every VMSA page; the constant sev-snp-measure and hardware use.
    static let vmsaGPA: UInt64 = 0xFFFF_FFFF_F000
    static let digestByteCount = 48

    private var pageInfo: [UInt8]
    /// Every update, in order, when tracing.
    private(set) var trace: [PageInfo]?

    /// A context starting at `seed` (48 zero bytes for a fresh launch).
    init(seed: [UInt8] = Array(repeating: 0, count: 48), tracing: Bool = false) {
        precondition(seed.count == Self.digestByteCount)
        pageInfo = seed + Array(repeating: 0, count: PageInfo.byteCount - Self.digestByteCount)
        pageInfo[0x60] = UInt8(PageInfo.byteCount)  // LENGTH, le16 0x0070
        trace = tracing ? [] : nil
    }

    /// The current GCTX.LD.
    var digest: [UInt8] { Array(pageInfo[0..<Self.digestByteCount]) }

    /// One NORMAL update per page of `data`, starting at `gpa`. `data.count` must be a page multiple.
    mutating func updateNormalPages(gpa: UInt64, data: [UInt8]) {
        precondition(data.count % 4096 == 0)
        data.withUnsafeBytes { raw in
            for page in 0..<raw.count / 4096 {
                let contents = Self.sha384(UnsafeRawBufferPointer(rebasing: raw[page * 4096..<(page + 1) * 4096]))
                update(.normal, gpa: gpa + UInt64(page) * 4096, contents: contents)
            }
        }
    }

    /// One update whose CONTENTS is 48 zero bytes (ZERO, UNMEASURED, SECRETS, CPUID pages).
    mutating func update(_ type: PageInfo.PageType, gpa: UInt64) {
        for index in 0x30..<0x60 { pageInfo[index] = 0 }
        finish(type, gpa: gpa)
    }

    /// One update whose CONTENTS is the SHA-384 of a page (NORMAL, VMSA).
    mutating func update(_ type: PageInfo.PageType, gpa: UInt64, contents: SHA384.Digest) {
        contents.withUnsafeBytes { digest in
            pageInfo.withUnsafeMutableBytes { info in
                UnsafeMutableRawBufferPointer(rebasing: info[0x30..<0x60]).copyMemory(from: digest)
            }
        }
        finish(type, gpa: gpa)
    }

    private mutating func finish(_ type: PageInfo.PageType, gpa: UInt64) {
        pageInfo[0x62] = type.rawValue  // PAGE_TYPE
        for index in 0..<8 { pageInfo[0x68 + index] = UInt8(truncatingIfNeeded: gpa >> (index * 8)) }  // GPA
        if trace != nil {
            trace!.append(
                PageInfo(
                    digestBefore: digest, contents: Array(pageInfo[0x30..<0x60]), pageType: type, gpa: gpa))
        }
        let next = pageInfo.withUnsafeBytes { Self.sha384($0) }
        next.withUnsafeBytes { digest in
            pageInfo.withUnsafeMutableBytes { info in
                UnsafeMutableRawBufferPointer(rebasing: info[0..<Self.digestByteCount]).copyMemory(from: digest)
            }
        }
    }

    /// SHA-384 of raw memory, without copying it into an array.
    static func sha384(_ bytes: UnsafeRawBufferPointer) -> SHA384.Digest {
        var hash = SHA384()
        hash.update(bufferPointer: bytes)
        return hash.finalize()
    }
}
