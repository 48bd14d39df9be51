"""Unit tests of the reference client, no server: python3 -m unittest clients/python/test_vhsm_attest.py

An AMD-shaped PKI made here (RSA-4096 ARK and ASK with RSASSA-PSS SHA-384, a P-384 VCEK with AMD's hwID, SPL and
productName extensions) signs reports built here, so every refusal of check() is tested on evidence that is
otherwise genuine. AMD's real reports and certificates (TESTDATA/snp, default ../shared/testdata beside the
repository) verify to the pinned ARKs.
"""

import base64
import contextlib
import datetime
import io
import glob
import hashlib
import os
import sys
import tempfile
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vhsm_attest  # noqa: E402

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
CHIP_ID = bytes(range(64))
TCB = bytes([10, 0, 0, 0, 0, 0, 25, 84])  # Genoa: bl 10, tee 0, snp 25, ucode 84
MEASUREMENT = b"\xab" * 48


def der(tag, value):
    length = len(value)
    encoded = bytes([length]) if length < 0x80 else bytes([0x82]) + length.to_bytes(2, "big")
    return bytes([tag]) + encoded + value


def certificate(subject, issuer, key, signer, extensions=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30)))
    for oid, value in extensions:
        builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), False)
    return builder.sign(signer, hashes.SHA384(), rsa_padding=PSS)


def vcek(ask_key, chip_id=CHIP_ID, tcb=TCB):
    amd = "1.3.6.1.4.1.3704.1."
    spls = [(amd + "3.1", tcb[0]), (amd + "3.2", tcb[1]), (amd + "3.3", tcb[6]), (amd + "3.8", tcb[7])]
    extensions = [(amd + "2", der(0x16, b"Genoa")), (amd + "4", chip_id)]
    extensions += [(oid, der(0x02, bytes([level]))) for oid, level in spls]
    key = ec.generate_private_key(ec.SECP384R1())
    return key, certificate("SEV-VCEK", "SEV-Genoa", key, ask_key, extensions)


def leaf():
    key = ec.generate_private_key(ec.SECP256R1())
    return certificate("vhsmd", "vhsmd", key, rsa.generate_private_key(65537, 2048)).public_bytes(
        serialization.Encoding.DER)


class Fixture:
    ark_key = rsa.generate_private_key(65537, 4096)
    ask_key = rsa.generate_private_key(65537, 4096)
    ark = certificate("ARK-Genoa", "ARK-Genoa", ark_key, ark_key)
    ask = certificate("SEV-Genoa", "ARK-Genoa", ask_key, ark_key)
    vcek_key, vcek = vcek(ask_key)


def report(nonce, spki_sha256, measurement=MEASUREMENT, policy=0x30000, signer=None, guest_svn=0, host_data=bytes(32),
           id_key_digest=bytes(48), author_key_digest=bytes(48)):
    body = bytearray(vhsm_attest.REPORT_SIZE)
    body[0:4] = (5).to_bytes(4, "little")
    body[0x04:0x08] = guest_svn.to_bytes(4, "little")
    body[0xC0:0xE0], body[0xE0:0x110], body[0x110:0x140] = host_data, id_key_digest, author_key_digest
    body[0x08:0x10] = policy.to_bytes(8, "little")
    body[0x34:0x38] = (1).to_bytes(4, "little")
    body[0x50:0x90] = vhsm_attest.report_data(nonce, spki_sha256)
    body[0x90:0xC0] = measurement
    body[0x180:0x188] = TCB
    body[0x188], body[0x189] = 0x19, 0x11
    body[0x1A0:0x1E0] = CHIP_ID
    r, s = utils.decode_dss_signature((signer or Fixture.vcek_key).sign(bytes(body[:0x2A0]), ec.ECDSA(hashes.SHA384())))
    body[0x2A0:0x2E8], body[0x2E8:0x330] = r.to_bytes(72, "little"), s.to_bytes(72, "little")
    return bytes(body)


def answer(nonce, leaf_der, certificates=None, **fields):
    spki_sha256 = hashlib.sha256(vhsm_attest.spki_der(leaf_der)).digest()
    raw = report(nonce, spki_sha256, **fields)
    certificates = [Fixture.vcek, Fixture.ask, Fixture.ark] if certificates is None else certificates
    encoded = [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in certificates]
    return {"format": "vhsm-attested-tls-v1", "nonce": nonce.hex(), "report": base64.b64encode(raw).decode(),
            "certificates": encoded, "spki_sha256": spki_sha256.hex()}


def judge(data, nonce, leaf_der, measurements=(MEASUREMENT,), root=Fixture.ark, **options):
    return vhsm_attest.check(data, nonce, leaf_der, list(measurements), root, **options)


class FormatTests(unittest.TestCase):
    def test_binding_test_vector(self):
        self.assertEqual(vhsm_attest.report_data(bytes(range(32)), b"\xee" * 32).hex(),
                         "8c6a0b62c378c39fa34e737062cc3a3a6d3fff1917713c72b526e43e2ca90fa5"
                         "e65ff38c7944081b17c5ffd22f6f62634d6b365b1f78d5dda7d5bd18a5e5812d")

    def test_extension_parser_on_fixed_bytes(self):
        fixed = bytes.fromhex("3029" "0c14" + b"vhsm-attested-tls-v1".hex() + "0403000102" "0402abcd" "3008"
                              "0402dead" "0402beef")
        self.assertEqual(vhsm_attest.parse_evidence_extension(fixed), {
            "format": "vhsm-attested-tls-v1", "nonce": b"\x00\x01\x02", "report": b"\xab\xcd",
            "certificates": [b"\xde\xad", b"\xbe\xef"]})
        long_form = der(0x30, der(0x0C, b"x") + der(0x04, bytes(32)) + der(0x04, bytes(1184)) + der(0x30, b""))
        self.assertEqual(len(vhsm_attest.parse_evidence_extension(long_form)["report"]), 1184)
        for bad in [fixed + b"\x00", fixed[:-1], bytes.fromhex("3003020100"),
                    der(0x30, der(0x0C, b"x") + der(0x04, b"") + der(0x04, b"") + der(0x30, der(0x02, b"\x01")))]:
            with self.assertRaises(ValueError, msg=bad.hex()):
                vhsm_attest.parse_evidence_extension(bad)

    def test_spki_is_the_certificates_own_bytes(self):
        leaf_der = leaf()
        key = x509.load_der_x509_certificate(leaf_der).public_key()
        self.assertEqual(vhsm_attest.spki_der(leaf_der), key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))

    def test_tcb_comparison_per_component_and_layout(self):
        reported = bytes([10, 0, 0, 0, 0, 0, 25, 84])
        self.assertEqual(vhsm_attest.tcb_below(reported, bytes([9, 0, 0, 0, 0, 0, 25, 84]), "Genoa"), [])
        self.assertEqual(vhsm_attest.tcb_below(reported, bytes([11, 0, 0, 0, 0, 0, 24, 84]), "Genoa"), ["bl"])
        self.assertEqual(vhsm_attest.tcb_below(reported, bytes([0, 0, 0, 0, 0, 0, 0, 85]), "Milan"), ["ucode"])
        # Turin: byte 0 is FMC, byte 6 reserved: the same bytes compare differently.
        self.assertEqual(vhsm_attest.tcb_below(reported, bytes([11, 0, 0, 0, 0, 0, 30, 84]), "Turin"), ["fmc"])
        self.assertEqual(vhsm_attest.tcb_below(reported, bytes([0, 1, 0, 26, 0, 0, 0, 0]), "Turin"), ["bl", "snp"])


    def test_http_answer_is_read_to_its_end_only(self):
        class Feed:  # a connection that never closes: reading past the answer would fail the test
            def __init__(self, *parts):
                self.parts = list(parts)

            def recv(self, size):
                if not self.parts:
                    raise AssertionError("read past the end of the answer")
                return self.parts.pop(0)

        length = Feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n{\"data\"", b": 1}")
        self.assertEqual(vhsm_attest.read_response(length), ("200", b'{"data": 1}'))
        chunked = Feed(b"HTTP/1.1 501 Not Implemented\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab", b"cd\r\n",
                       b"2\r\nef\r\n0\r\n\r\n")
        self.assertEqual(vhsm_attest.read_response(chunked), ("501", b"abcdef"))
        with self.assertRaisesRegex(ValueError, "in the middle of its HTTP answer"):
            vhsm_attest.read_response(Feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n{", b""))


class CheckTests(unittest.TestCase):
    def setUp(self):
        self.nonce, self.leaf = os.urandom(32), leaf()

    def refused(self, result, *fragments):
        self.assertFalse(result.trusted)
        text = "\n".join(result.problems)
        for fragment in fragments:
            self.assertIn(fragment, text)

    def test_genuine_bound_expected_is_trusted(self):
        result = judge(answer(self.nonce, self.leaf), self.nonce, self.leaf)
        self.assertEqual(result.problems, [])
        self.assertTrue(result.trusted)
        self.assertEqual((result.product, result.signer, result.measurement), ("Genoa", "VCEK", MEASUREMENT.hex()))
        self.assertIn("BEGIN CERTIFICATE", result.leaf_pem)

    def test_the_certificate_extension_form(self):
        raw = report(bytes(32), hashlib.sha256(vhsm_attest.spki_der(self.leaf)).digest())
        chain = b"".join(der(0x04, c.public_bytes(serialization.Encoding.DER))
                         for c in [Fixture.vcek, Fixture.ask, Fixture.ark])
        value = der(0x30, der(0x0C, b"vhsm-attested-tls-v1") + der(0x04, bytes(32)) + der(0x04, raw) + der(0x30, chain))
        self.assertTrue(judge(vhsm_attest.parse_evidence_extension(value), bytes(32), self.leaf).trusted)

    def test_replayed_answer_for_another_nonce(self):
        recorded = answer(os.urandom(32), self.leaf)
        self.refused(judge(recorded, self.nonce, self.leaf), f"not for the nonce sent ({self.nonce.hex()})",
                     "replayed", "REPORT_DATA does not bind this nonce")

    def test_man_in_the_middle_names_both_keys(self):
        data, proxy = answer(self.nonce, self.leaf), leaf()
        proxy_spki = hashlib.sha256(vhsm_attest.spki_der(proxy)).hexdigest()
        self.refused(judge(data, self.nonce, proxy), f"expected SPKI SHA-256 {proxy_spki}",
                     f"the report binds {data['spki_sha256']}", "terminates TLS with their own key")

    def test_wrong_measurement_names_expected_and_actual(self):
        self.refused(judge(answer(self.nonce, self.leaf), self.nonce, self.leaf, [b"\xcd" * 48]),
                     f"MEASUREMENT: expected {'cd' * 48}, got {'ab' * 48}")
        self.refused(judge(answer(self.nonce, self.leaf), self.nonce, self.leaf, [b"\xcd" * 48, b"\xef" * 48]),
                     f"MEASUREMENT: expected one of {'cd' * 48}, {'ef' * 48}, got {'ab' * 48}")

    def test_an_identity_is_required(self):
        data = answer(self.nonce, self.leaf)
        self.refused(judge(data, self.nonce, self.leaf, []), "no expected MEASUREMENT, ID_KEY_DIGEST or "
                     "AUTHOR_KEY_DIGEST was given: verifying 'some SEV-SNP VM' is not verification")
        # Reference values that name no identity do not make one.
        self.refused(judge(data, self.nonce, self.leaf, [], host_data=bytes(32), min_guest_svn=0),
                     "'some SEV-SNP VM' is not verification")

    def test_id_key_digest_any_of(self):
        digest, other = b"\x11" * 48, b"\x22" * 48
        data = answer(self.nonce, self.leaf, id_key_digest=digest)
        self.refused(judge(data, self.nonce, self.leaf, [], id_key_digests=[other]),
                     f"ID_KEY_DIGEST: expected {other.hex()}, got {digest.hex()}")
        self.refused(judge(data, self.nonce, self.leaf, id_key_digests=[other, b"\x33" * 48]),
                     f"ID_KEY_DIGEST: expected one of {other.hex()}, {'33' * 48}, got {digest.hex()}")
        met = judge(data, self.nonce, self.leaf, [], id_key_digests=[other, digest])  # the only identity given
        self.assertEqual(met.problems, [])
        self.assertEqual(met.id_key_digest, digest.hex())

    def test_author_key_digest_any_of(self):
        digest, other = b"\x44" * 48, b"\x55" * 48
        data = answer(self.nonce, self.leaf, author_key_digest=digest)
        self.refused(judge(data, self.nonce, self.leaf, [], author_key_digests=[other]),
                     f"AUTHOR_KEY_DIGEST: expected {other.hex()}, got {digest.hex()}")
        self.refused(judge(data, self.nonce, self.leaf, author_key_digests=[bytes(48)]),
                     f"AUTHOR_KEY_DIGEST: expected {'00' * 48}, got {digest.hex()}")
        met = judge(data, self.nonce, self.leaf, [], author_key_digests=[digest])
        self.assertEqual(met.problems, [])
        self.assertEqual(met.author_key_digest, digest.hex())

    def test_min_guest_svn(self):
        data = answer(self.nonce, self.leaf, guest_svn=7, id_key_digest=b"\x11" * 48)
        self.refused(judge(data, self.nonce, self.leaf, [], id_key_digests=[b"\x11" * 48], min_guest_svn=8),
                     "GUEST_SVN: expected at least 8, got 7")
        for minimum in (0, 7):
            met = judge(data, self.nonce, self.leaf, [], id_key_digests=[b"\x11" * 48], min_guest_svn=minimum)
            self.assertEqual(met.problems, [], minimum)
        self.assertEqual(met.guest_svn, 7)

    def test_host_data(self):
        host_data = bytes(range(32))
        data = answer(self.nonce, self.leaf, host_data=host_data)
        self.refused(judge(data, self.nonce, self.leaf, host_data=bytes(32)),
                     f"HOST_DATA: expected {'00' * 32}, got {host_data.hex()}")
        self.assertTrue(judge(data, self.nonce, self.leaf, host_data=host_data).trusted)
        self.assertEqual(judge(data, self.nonce, self.leaf).host_data, host_data.hex())  # not given: not checked

    def test_every_violation_is_listed(self):
        data = answer(self.nonce, self.leaf, guest_svn=1, host_data=b"\x01" * 32)
        result = judge(data, self.nonce, self.leaf, [b"\xcd" * 48], id_key_digests=[b"\x11" * 48],
                       author_key_digests=[b"\x22" * 48], min_guest_svn=2, host_data=bytes(32))
        fields = [problem.split(":")[0] for problem in result.problems]
        self.assertEqual(fields, ["MEASUREMENT", "ID_KEY_DIGEST", "AUTHOR_KEY_DIGEST", "GUEST_SVN", "HOST_DATA"])

    def test_emulator_root_only_when_named(self):
        self.refused(judge(answer(self.nonce, self.leaf), self.nonce, self.leaf, root=None),
                     "neither an AMD ARK nor the one --trust-emulator-root names")
        other = rsa.generate_private_key(65537, 4096)
        self.refused(judge(answer(self.nonce, self.leaf), self.nonce, self.leaf,
                           root=certificate("ARK-Genoa", "ARK-Genoa", other, other)), "neither an AMD ARK")

    def test_debug_policy_refused_unless_allowed(self):
        data = answer(self.nonce, self.leaf, policy=0x30000 | 1 << 19)
        self.refused(judge(data, self.nonce, self.leaf), "POLICY: expected debug not allowed, got 0xb0000")
        self.assertTrue(judge(data, self.nonce, self.leaf, allow_debug=True).trusted)

    def test_min_tcb(self):
        data = answer(self.nonce, self.leaf)
        self.refused(judge(data, self.nonce, self.leaf, min_tcb=bytes([10, 0, 0, 0, 0, 0, 26, 84])),
                     "REPORTED_TCB: expected at least bl 10, tee 0, snp 26, ucode 84", "(snp below)")
        self.assertTrue(judge(data, self.nonce, self.leaf, min_tcb=bytes([10, 0, 0, 0, 0, 0, 25, 84])).trusted)

    def test_another_chips_vcek(self):
        key, other = vcek(Fixture.ask_key, chip_id=bytes(64))
        self.refused(judge(answer(self.nonce, self.leaf, [other, Fixture.ask, Fixture.ark], signer=key), self.nonce,
                           self.leaf), f"is not CHIP_ID {CHIP_ID.hex()}: another chip's VCEK")

    def test_vcek_of_another_tcb(self):
        key, other = vcek(Fixture.ask_key, tcb=bytes([9, 0, 0, 0, 0, 0, 25, 84]))
        self.refused(judge(answer(self.nonce, self.leaf, [other, Fixture.ask, Fixture.ark], signer=key), self.nonce,
                           self.leaf), "blSPL is 9, REPORTED_TCB says 10")

    def test_signature_and_truncation(self):
        data = answer(self.nonce, self.leaf)
        raw = bytearray(base64.b64decode(data["report"]))
        raw[0x90] ^= 1
        changed = dict(data, report=base64.b64encode(bytes(raw)).decode())
        self.refused(judge(changed, self.nonce, self.leaf, [bytes(raw[0x90:0xC0])]), "signature does not verify")
        short = dict(data, report=base64.b64encode(bytes(raw[:1000])).decode())
        self.refused(judge(short, self.nonce, self.leaf), "the report has 1000 bytes; a report has 1184")

    def test_certificates_that_do_not_chain(self):
        self.refused(judge(answer(self.nonce, self.leaf, [Fixture.vcek, Fixture.ark]), self.nonce, self.leaf),
                     "no certificate signs CN=SEV-VCEK", "do not chain")
        self.refused(judge(answer(self.nonce, self.leaf, []), self.nonce, self.leaf), "carries no VCEK or VLEK")

    def test_cert_and_chain_stand_in_for_the_evidence_certificates(self):
        bare = answer(self.nonce, self.leaf, [])
        self.refused(judge(bare, self.nonce, self.leaf), "carries no VCEK or VLEK and none was given (--cert)")
        met = judge(bare, self.nonce, self.leaf, cert=Fixture.vcek, chain=[Fixture.ask, Fixture.ark])
        self.assertEqual(met.problems, [])
        self.assertEqual((met.signer, met.root), ("VCEK", "operator-trusted (--trust-emulator-root)"))
        # The emulator root is named: the chain need not carry it; without the ASK nothing chains.
        self.assertTrue(judge(bare, self.nonce, self.leaf, cert=Fixture.vcek, chain=[Fixture.ask]).trusted)
        self.refused(judge(bare, self.nonce, self.leaf, cert=Fixture.vcek, chain=[Fixture.ark]),
                     "no certificate signs CN=SEV-VCEK", "do not chain")
        # The VCEK alone, the ASK and ARK from the evidence.
        self.assertTrue(judge(answer(self.nonce, self.leaf, [Fixture.ask, Fixture.ark]), self.nonce, self.leaf,
                              cert=Fixture.vcek).trusted)
        # --cert is the endorsement: another chip's VCEK does not verify the report.
        _, other = vcek(Fixture.ask_key)
        self.refused(judge(answer(self.nonce, self.leaf), self.nonce, self.leaf, cert=other),
                     "signature does not verify")

    def test_a_chain_does_not_make_its_root_trusted(self):
        bare = answer(self.nonce, self.leaf, [])
        self.refused(judge(bare, self.nonce, self.leaf, root=None, cert=Fixture.vcek, chain=[Fixture.ask, Fixture.ark]),
                     f"(SHA-256 {vhsm_attest.fingerprint(Fixture.ark)}) is neither an AMD ARK nor the one "
                     "--trust-emulator-root names")
        # A look-alike ARK that signs the same ASK key: the chain ends at it, not at the named root.
        other = rsa.generate_private_key(65537, 4096)
        fake_ark = certificate("ARK-Genoa", "ARK-Genoa", other, other)
        fake_ask = certificate("SEV-Genoa", "ARK-Genoa", Fixture.ask_key, other)
        self.refused(judge(bare, self.nonce, self.leaf, cert=Fixture.vcek, chain=[fake_ask, fake_ark]),
                     f"(SHA-256 {vhsm_attest.fingerprint(fake_ark)}) is neither an AMD ARK")

    def test_malformed_answer_and_certificate(self):
        data = dict(answer(self.nonce, self.leaf), report="not base64!")
        self.refused(judge(data, self.nonce, self.leaf), "the attestation answer is malformed")
        self.refused(judge([data], self.nonce, self.leaf), "the attestation answer is malformed")
        self.refused(judge(data, self.nonce, b"\x30\x03\x02\x01"), "the certificate of the TLS handshake does not")


class CommandLineTests(unittest.TestCase):
    """The options main() refuses before any connection (exit 2), and the certificate files it reads."""

    def usage_error(self, *argv):
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            self.assertEqual(vhsm_attest.main(["https://127.0.0.1:1", *argv]), 2, argv)
        return stderr.getvalue()

    def test_an_identity_is_required(self):
        for argv in [(), ("--host-data", "00" * 32), ("--min-tcb", "00" * 8)]:
            self.assertIn("Verifying 'some SEV-SNP VM' is not verification", self.usage_error(*argv))

    def test_malformed_reference_values(self):
        self.assertIn("--id-key-digest is 48 bytes (96 hex digits), got 32 bytes",
                      self.usage_error("--id-key-digest", "11" * 32))
        self.assertIn("--author-key-digest 'xyz' is not hex", self.usage_error("--author-key-digest", "xyz"))
        self.assertIn("--host-data is 32 bytes (64 hex digits), got 48 bytes",
                      self.usage_error("--measurement", "ab" * 48, "--host-data", "00" * 48))
        self.assertIn("--min-guest-svn 3 applies to signed images",
                      self.usage_error("--measurement", "ab" * 48, "--min-guest-svn", "3"))
        self.assertIn("not a 32-bit unsigned number",
                      self.usage_error("--id-key-digest", "11" * 48, "--min-guest-svn", str(1 << 32)))
        self.assertIn("holds no certificate", self.usage_error("--measurement", "ab" * 48, "--cert", __file__))

    def test_certificate_files_der_and_pem(self):
        with tempfile.TemporaryDirectory() as directory:
            der_path, pem_path = os.path.join(directory, "vcek.der"), os.path.join(directory, "chain.pem")
            with open(der_path, "wb") as handle:
                handle.write(Fixture.vcek.public_bytes(serialization.Encoding.DER))
            with open(pem_path, "wb") as handle:
                handle.write(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [Fixture.ask, Fixture.ark]))
            self.assertEqual(vhsm_attest.read_certificates(der_path), [Fixture.vcek])
            self.assertEqual(vhsm_attest.read_certificates(pem_path), [Fixture.ask, Fixture.ark])


class RealEvidenceTests(unittest.TestCase):
    """Every report in TESTDATA/snp with its VCEK or VLEK and AMD's ASK or ASVK and ARK, no root named: genuine,
    only the binding fails (these reports bind other data); one changed MEASUREMENT byte breaks the signature."""

    def test_amd_samples_verify_to_the_pinned_roots(self):
        here = os.path.dirname(os.path.abspath(__file__))
        directory = os.path.join(os.environ.get("TESTDATA") or os.path.join(here, "..", "..", "..", "shared",
                                                                             "testdata"), "snp")
        reports = sorted(glob.glob(os.path.join(directory, "*_report.bin")))
        self.assertGreaterEqual(len(reports), 10, f"AMD's sample reports are missing from {directory}")
        leaf_der = leaf()

        def pem(name):
            with open(os.path.join(directory, name), "rb") as handle:
                return x509.load_pem_x509_certificate(handle.read()).public_bytes(serialization.Encoding.DER)

        for path in reports:
            stem = os.path.basename(path)[: -len("_report.bin")]
            product, vlek = stem.split("_")[0], "_vlek_" in stem
            with self.subTest(stem):
                with open(path, "rb") as handle:
                    raw = handle.read()
                with open(os.path.join(directory, f"{stem}_{'vlek' if vlek else 'vcek'}.der"), "rb") as handle:
                    chain = [handle.read(), pem(f"{'asvk' if vlek else 'ask'}_{product}.pem")]
                chain.append(pem(f"ark_{product}.pem"))
                # The AWS VLEK sample expired in 2025: it is judged at an instant its certificates were valid.
                now = datetime.datetime(2025, 6, 1, tzinfo=datetime.timezone.utc) if vlek else None
                evidence = {"format": "vhsm-attested-tls-v1", "nonce": bytes(32), "report": raw, "certificates": chain}
                result = vhsm_attest.check(evidence, bytes(32), leaf_der, [raw[0x90:0xC0]], allow_debug=True, now=now)
                self.assertEqual(len(result.problems), 1, result.problems)
                self.assertIn("REPORT_DATA does not bind", result.problems[0])
                self.assertEqual((result.root, result.signer), (product.capitalize(), "VLEK" if vlek else "VCEK"))
                changed = raw[:0x90] + bytes([raw[0x90] ^ 1]) + raw[0x91:]
                broken = vhsm_attest.check(dict(evidence, report=changed), bytes(32), leaf_der, [changed[0x90:0xC0]],
                                           allow_debug=True, now=now)
                self.assertIn("signature does not verify", "\n".join(broken.problems))


if __name__ == "__main__":
    unittest.main()
