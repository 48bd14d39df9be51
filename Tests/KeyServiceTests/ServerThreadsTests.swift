import CLinux
import FoundationEssentials
import NIOCore
import Testing

@testable import KeyService

@Suite struct ServerThreadsTests {
    /// The CPUs the kernel lets this process run on, from `Cpus_allowed_list` in /proc/self/status ("0-1,4").
    private static func allowedCPUs() throws -> Int {
        let status = String(decoding: try Data(contentsOf: URL(fileURLWithPath: "/proc/self/status")), as: UTF8.self)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
        let list = line.dropFirst("Cpus_allowed_list:".count).filter { !$0.isWhitespace }
        return try list.split(separator: ",").reduce(0) { total, range in
            let ends = range.split(separator: "-").compactMap { Int($0) }
            let first = try #require(ends.first)
            return total + (ends.count == 2 ? ends[1] - first + 1 : 1)
        }
    }

    @Test func affinityCountMatchesTheKernelsList() throws {
        #expect(Int(clinux_affinity_cpu_count()) == (try Self.allowedCPUs()))
    }

    @Test func oneLoopPerAllowedCPUWithinNIOsCount() throws {
        #expect(ServerThreads.count == min(try Self.allowedCPUs(), System.coreCount))
        #expect(ServerThreads.count >= 1)
    }
}
