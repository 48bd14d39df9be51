import Crypto
import SNP
import Testing

/// The login binding of `auth/sev-snp` (issue 15): what REPORT_DATA a workload's report must carry.
@Suite struct AttestedLoginBindingTests {
    let nonce = (0..<32).map(UInt8.init)
    let key = [UInt8](repeating: 0x11, count: 32)
    let audience = [UInt8](repeating: 0x22, count: 32)

    @Test func bindingIsTheDocumentedHash() throws {
        let data = try #require(
            AttestedLoginBinding.reportData(nonce: nonce, publicKeySHA256: key, audienceSPKISHA256: audience))
        #expect(data == Array(SHA512.hash(data: Array("vhsm-login-v1".utf8) + nonce + key + audience)))
        #expect(Array(AttestedLoginBinding.label.utf8).count == 13)
        // The README's vector (computed with Python's hashlib): nonce 00 01 … 1f, K = 11 × 32, S = 22 × 32.
        #expect(
            Hex.encode(data)
                == "c75a2593b5422bd1ae6faf93cef7d24b97f5958128e7a02f4d84f1cd27ea319097f65af19ade7ec527049b3e20fc4334"
                + "7b8cfea5e983f6b92b8466130b8874c5")
    }

    @Test func withoutAPublicKeyKIsThirtyTwoZeroBytes() throws {
        let data = try #require(
            AttestedLoginBinding.reportData(nonce: nonce, publicKeySHA256: nil, audienceSPKISHA256: audience))
        #expect(
            data
                == AttestedLoginBinding.reportData(
                    nonce: nonce, publicKeySHA256: Array(repeating: 0, count: 32), audienceSPKISHA256: audience))
        // The README's vector: nonce 00 01 … 1f, no public key (K = 00 × 32), S = 22 × 32.
        #expect(
            Hex.encode(data)
                == "982523786beafbcd56e13c234a8e4d0ef3610eb41125191c5f39eaf34caf3654665c9c7a9f64b056f8c9ad068a0b3c89"
                + "402e0e56b1b31a8742105118d6e29326")
        #expect(
            data != AttestedLoginBinding.reportData(nonce: nonce, publicKeySHA256: key, audienceSPKISHA256: audience))
    }

    @Test func eachInputChangesTheBinding() throws {
        let base = AttestedLoginBinding.reportData(nonce: nonce, publicKeySHA256: key, audienceSPKISHA256: audience)
        var otherNonce = nonce
        otherNonce[0] ^= 1
        #expect(
            AttestedLoginBinding.reportData(nonce: otherNonce, publicKeySHA256: key, audienceSPKISHA256: audience)
                != base)
        // Another vhsmd (or a proxy terminating TLS) gives another S: the report is not for it.
        #expect(
            AttestedLoginBinding.reportData(
                nonce: nonce, publicKeySHA256: key, audienceSPKISHA256: AttestedLoginBinding.absent) != base)
        // Not the attested-TLS binding of the same bytes.
        #expect(AttestedTLSBinding.reportData(nonce: nonce, spkiSHA256: key) != base)
    }

    @Test func wrongLengthsAreRefusedNotPadded() {
        #expect(
            AttestedLoginBinding.reportData(
                nonce: Array(nonce.prefix(31)), publicKeySHA256: key, audienceSPKISHA256: audience) == nil)
        #expect(
            AttestedLoginBinding.reportData(nonce: nonce + [0], publicKeySHA256: key, audienceSPKISHA256: audience)
                == nil)
        #expect(
            AttestedLoginBinding.reportData(nonce: nonce, publicKeySHA256: key + [0], audienceSPKISHA256: audience)
                == nil)
        #expect(
            AttestedLoginBinding.reportData(nonce: nonce, publicKeySHA256: [], audienceSPKISHA256: audience) == nil)
        #expect(
            AttestedLoginBinding.reportData(
                nonce: nonce, publicKeySHA256: key, audienceSPKISHA256: Array(audience.prefix(31))) == nil)
    }
}
