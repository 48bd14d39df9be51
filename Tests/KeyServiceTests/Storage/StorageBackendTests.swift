import Testing

@testable import KeyService

/// The contract every `StorageBackend` keeps, run against both implementations.
struct StorageBackendTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case memory, sqlite
        var testDescription: String { rawValue }
    }

    /// A backend of `kind`, with the temporary directory that must outlive it.
    private static func make(_ kind: Kind) throws -> (any StorageBackend, TemporaryDirectory) {
        let directory = TemporaryDirectory()
        switch kind {
        case .memory: return (MemoryBackend(), directory)
        case .sqlite: return (try SQLiteBackend(directory: directory.path), directory)
        }
    }

    @Test(arguments: Kind.allCases)
    func putThenGetReturnsTheValueAndDeleteRemovesIt(_ kind: Kind) throws {
        let (backend, directory) = try Self.make(kind)
        defer { withExtendedLifetime(directory) {} }
        #expect(try backend.get("a/b") == nil)
        try backend.put("a/b", [1, 2, 3])
        #expect(try backend.get("a/b") == [1, 2, 3])
        try backend.put("a/b", [])
        #expect(try backend.get("a/b") == [])
        try backend.delete("a/b")
        #expect(try backend.get("a/b") == nil)
        try backend.delete("a/b")
    }

    @Test(arguments: Kind.allCases)
    func listGivesImmediateChildrenWithFoldersOnce(_ kind: Kind) throws {
        let (backend, directory) = try Self.make(kind)
        defer { withExtendedLifetime(directory) {} }
        for path in ["kv/data/x", "kv/data/y/1", "kv/data/y/2", "kv/data/y/z/3", "kv/meta/x", "kv/dataz", "kw"] {
            try backend.put(path, [0])
        }
        #expect(try backend.list(prefix: "kv/data/") == ["x", "y/"])
        #expect(try backend.list(prefix: "kv/data/y/") == ["1", "2", "z/"])
        #expect(try backend.list(prefix: "kv/") == ["data/", "dataz", "meta/"])
        #expect(try backend.list(prefix: "") == ["kv/", "kw"])
        #expect(try backend.list(prefix: "kv/data") == ["/", "z"])
        #expect(try backend.list(prefix: "nothing/") == [])
    }

    @Test(arguments: Kind.allCases)
    func listComparesPrefixesByteForByte(_ kind: Kind) throws {
        let (backend, directory) = try Self.make(kind)
        defer { withExtendedLifetime(directory) {} }
        try backend.put("caf\u{E9}/a", [0])  // precomposed é
        try backend.put("cafe\u{301}/b", [0])  // e + combining acute: canonically equal, other bytes
        try backend.put("\u{10FFFF}/c", [0])
        #expect(try backend.list(prefix: "caf\u{E9}/") == ["a"])
        #expect(try backend.list(prefix: "cafe\u{301}/") == ["b"])
        #expect(try backend.list(prefix: "\u{10FFFF}/") == ["c"])
    }

    @Test(arguments: Kind.allCases)
    func transactionAppliesEveryWriteAndSeesItsOwnWrites(_ kind: Kind) throws {
        let (backend, directory) = try Self.make(kind)
        defer { withExtendedLifetime(directory) {} }
        try backend.put("old", [9])
        let seen = try backend.transaction { transaction in
            try transaction.put("t/1", [1])
            try transaction.put("t/2", [2])
            try transaction.delete("old")
            return (try transaction.get("t/1"), try transaction.get("old"), try transaction.list(prefix: "t/"))
        }
        #expect(seen.0 == [1])
        #expect(seen.1 == nil)
        #expect(seen.2 == ["1", "2"])
        #expect(try backend.get("t/2") == [2])
        #expect(try backend.get("old") == nil)
    }

    @Test(arguments: Kind.allCases)
    func throwingTransactionLeavesNoTrace(_ kind: Kind) throws {
        struct Abort: Error {}
        let (backend, directory) = try Self.make(kind)
        defer { withExtendedLifetime(directory) {} }
        try backend.put("keep", [7])
        #expect(throws: Abort.self) {
            try backend.transaction { transaction in
                try transaction.put("t/1", [1])
                try transaction.delete("keep")
                throw Abort()
            }
        }
        #expect(try backend.get("t/1") == nil)
        #expect(try backend.get("keep") == [7])
    }

    @Test(arguments: Kind.allCases)
    func concurrentWritersAllLand(_ kind: Kind) async throws {
        let (backend, directory) = try Self.make(kind)
        defer { withExtendedLifetime(directory) {} }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<4 {
                group.addTask {
                    for index in 0..<25 {
                        try backend.put("c/\(writer)/\(index)", [UInt8(writer), UInt8(index)])
                        _ = try backend.get("c/\(writer)/\(index)")
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try backend.list(prefix: "c/") == ["0/", "1/", "2/", "3/"])
        #expect(try backend.list(prefix: "c/3/").count == 25)
        #expect(try backend.get("c/2/24") == [2, 24])
    }
}
