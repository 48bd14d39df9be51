import CLinux
import SNP
import Testing

@testable import SNPGuest

/// The kernel's own structs, as Swift imports them, against the sizes and offsets of the UAPI (snp-facts §2).
@Suite struct KernelABITests {
    @Test func structSizes() {
        #expect(MemoryLayout<snp_guest_request_ioctl>.size == 32)
        #expect(MemoryLayout<snp_report_req>.size == 96)
        #expect(MemoryLayout<snp_report_resp>.size == 4000)
        #expect(MemoryLayout<snp_derived_key_req>.size == 32)
        #expect(MemoryLayout<snp_derived_key_resp>.size == 64)
        #expect(MemoryLayout<snp_ext_report_req>.size == 112)
    }

    @Test func structsMatchTheMessageTypes() {
        #expect(MemoryLayout<snp_report_req>.size == ReportRequest.byteCount)
        #expect(MemoryLayout<snp_report_resp>.size == ReportResponse.kernelBufferCount)
        #expect(MemoryLayout<snp_derived_key_req>.size == DerivedKeyRequest.byteCount)
        #expect(MemoryLayout<snp_derived_key_resp>.size == DerivedKeyResponse.byteCount)
    }

    @Test func fieldOffsets() {
        #expect(MemoryLayout<snp_guest_request_ioctl>.offset(of: \.msg_version) == 0x00)
        #expect(MemoryLayout<snp_guest_request_ioctl>.offset(of: \.req_data) == 0x08)
        #expect(MemoryLayout<snp_guest_request_ioctl>.offset(of: \.resp_data) == 0x10)
        #expect(MemoryLayout<snp_report_req>.offset(of: \.vmpl) == 0x40)
        #expect(MemoryLayout<snp_report_req>.offset(of: \.rsvd) == 0x44)
        #expect(MemoryLayout<snp_derived_key_req>.offset(of: \.guest_field_select) == 0x08)
        #expect(MemoryLayout<snp_derived_key_req>.offset(of: \.vmpl) == 0x10)
        #expect(MemoryLayout<snp_derived_key_req>.offset(of: \.guest_svn) == 0x14)
        #expect(MemoryLayout<snp_derived_key_req>.offset(of: \.tcb_version) == 0x18)
        #expect(MemoryLayout<snp_ext_report_req>.offset(of: \.certs_address) == 0x60)
        #expect(MemoryLayout<snp_ext_report_req>.offset(of: \.certs_len) == 0x68)
    }

    @Test func exitinfo2SplitsIntoFirmwareAndHypervisorErrors() {
        var guest = snp_guest_request_ioctl()
        guest.exitinfo2 = 0x0000_0002_0000_0016
        #expect(guest.fw_error == 0x16)
        #expect(guest.vmm_error == 2)
        #expect(withUnsafeBytes(of: &guest) { Array($0[0x18..<0x20]) } == [0x16, 0, 0, 0, 2, 0, 0, 0])
    }

    @Test func requestNumbers() {
        #expect(CLINUX_SNP_GET_REPORT == 0xC020_5300)
        #expect(CLINUX_SNP_GET_DERIVED_KEY == 0xC020_5301)
        #expect(CLINUX_SNP_GET_EXT_REPORT == 0xC020_5302)
        #expect(SEVGuestRequest.report.number == 0xC020_5300)
        #expect(SEVGuestRequest.derivedKey.number == 0xC020_5301)
        #expect(SEVGuestRequest.extendedReport.number == 0xC020_5302)
    }
}
