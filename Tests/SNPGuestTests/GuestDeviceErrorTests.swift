import SNP
import SystemPackage
import Testing

@testable import SNPGuest

@Suite struct GuestDeviceErrorTests {
    static let path = "/dev/sev-guest"

    struct Case: Sendable, CustomTestStringConvertible {
        var errno: Errno
        var exitinfo2: UInt64
        var expected: GuestDeviceError
        /// Words the description must contain.
        var mentions: [String]

        var testDescription: String { "\(errno.rawValue) / 0x\(String(exitinfo2, radix: 16))" }
    }

    static let ioctlCases: [Case] = [
        Case(
            errno: .ioError, exitinfo2: 0x16,
            expected: .requestFailed(path: path, request: .report, firmware: .invalidParam, vmmError: 0),
            mentions: ["INVALID_PARAM (0x16)", "no hypervisor error", "VMPCK", "reboot"]),
        Case(
            errno: .ioError, exitinfo2: 0x27,
            expected: .requestFailed(path: path, request: .report, firmware: .invalidKey, vmmError: 0),
            mentions: ["INVALID_KEY (0x27)"]),
        Case(
            errno: .ioError, exitinfo2: 0x1_0000_0000,
            expected: .requestFailed(path: path, request: .report, firmware: .success, vmmError: 1),
            mentions: ["INVALID_LEN", "still usable"]),
        Case(
            errno: .ioError, exitinfo2: 0x2_0000_0000,
            expected: .requestFailed(path: path, request: .report, firmware: .success, vmmError: 2),
            mentions: ["BUSY", "reboot"]),
        Case(
            errno: .ioError, exitinfo2: 0x7_0000_0004,
            expected: .requestFailed(path: path, request: .report, firmware: .invalidLength, vmmError: 7),
            mentions: ["INVALID_LEN (0x4)", "unknown hypervisor error 7"]),
        Case(
            errno: .ioError, exitinfo2: 0xff,
            expected: .noFirmwareCall(path: path, request: .report, exitinfo2: 0xff),
            mentions: ["before any firmware call", "0xff"]),
        Case(
            errno: .ioError, exitinfo2: .max,
            expected: .noFirmwareCall(path: path, request: .report, exitinfo2: .max),
            mentions: ["before any firmware call", "0xffffffffffffffff"]),
        Case(
            errno: .inappropriateIOCTLForDevice, exitinfo2: 0xff,
            expected: .vmpckDisabled(path: path, request: .report),
            mentions: ["the VMPCK was disabled after an earlier failed request; reboot the guest"]),
        Case(
            errno: .timedOut, exitinfo2: 0x2_0000_0000,
            expected: .hostThrottled(path: path, request: .report),
            mentions: ["ETIMEDOUT", "throttl"]),
        Case(
            errno: .invalidArgument, exitinfo2: 0,
            expected: .invalidRequest(path: path, request: .report),
            mentions: ["EINVAL", "msg_version", "certs_len"]),
        Case(
            errno: .badAddress, exitinfo2: 0,
            expected: .failed(path: path, request: .report, .badAddress),
            mentions: ["Bad address"]),
    ]

    @Test(arguments: ioctlCases)
    func decodesIoctlFailures(_ test: Case) {
        let error = GuestDeviceError(
            path: Self.path, request: .report, errno: test.errno, exitinfo2: test.exitinfo2)
        #expect(error == test.expected)
        #expect(error.description.contains("SNP_GET_REPORT on '/dev/sev-guest'"))
        for word in test.mentions {
            #expect(error.description.contains(word), "\(error.description)")
        }
    }

    @Test func decodesOpenFailures() {
        #expect(
            GuestDeviceError(opening: "/x", errno: .noSuchFileOrDirectory) == .deviceMissing(path: "/x"))
        #expect(
            GuestDeviceError(opening: "/x", errno: .permissionDenied) == .permissionDenied(path: "/x"))
        #expect(GuestDeviceError(opening: "/x", errno: .notPermitted) == .permissionDenied(path: "/x"))
        #expect(
            GuestDeviceError(opening: "/x", errno: .noSuchAddressOrDevice)
                == .cannotOpen(path: "/x", .noSuchAddressOrDevice))
    }

    @Test func deviceMissingSaysWhatToCheck() {
        #expect(
            GuestDeviceError.deviceMissing(path: "/dev/sev-guest").description
                == "cannot open '/dev/sev-guest': No such file or directory. "
                + "Is this VM running with SEV-SNP, and is the sev-guest driver (module sev-guest) loaded?")
        #expect(
            GuestDeviceError.permissionDenied(path: "/dev/sev-guest").description.contains(
                "Permission denied"))
    }

    @Test func certificateBufferErrorNamesTheSize() {
        let text = GuestDeviceError.certificateBufferTooLarge(
            path: "/dev/sev-guest", requiredBytes: 20480
        ).description
        #expect(text.contains("20480-byte"))
        #expect(text.contains("16 KiB"))
        #expect(text.contains("'/dev/sev-guest'"))
    }
}
