"""Unit tests of the login client, no vhsmd: python3 -m unittest clients/python/test_vhsm_login.py

The binding against the test vectors of the README (notes/issue15-readme-draft.md); HPKE against RFC 9180's
published vectors (A.1 X25519/HKDF-SHA256/AES-128-GCM, A.2 X25519/HKDF-SHA256/ChaCha20Poly1305, A.3
P-256/HKDF-SHA256/AES-128-GCM for DeriveKeyPair's rejection sampling on a NIST curve; a DHKEM(P-384) DeriveKeyPair
known answer from .NET's HPKE tests, as RFC 9180 has no P-384 vector); opening a sealed auth block
of both of vhsmd's suites and every refusal of it; login() against a fake server on loopback that follows the wire
(wrapped answers of both suites, a bound key, the server's refusal); the command line's usage errors (exit 2).
"""

import base64
import contextlib
import io
import json
import os
import sys
import tempfile
import unittest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vhsm_login  # noqa: E402

NONCE = bytes(range(32))
INFO = bytes.fromhex("4f6465206f6e2061204772656369616e2055726e")  # "Ode on a Grecian Urn"
PT = bytes.fromhex("4265617574792069732074727574682c20747275746820626561757479")  # "Beauty is truth, truth beauty"
AAD0, AAD1 = bytes.fromhex("436f756e742d30"), bytes.fromhex("436f756e742d31")  # "Count-0", "Count-1"


class BindingTests(unittest.TestCase):
    def test_readme_vector_with_a_public_key(self):
        self.assertEqual(vhsm_login.report_data(NONCE, b"\x11" * 32, b"\x22" * 32).hex(),
                         "c75a2593b5422bd1ae6faf93cef7d24b97f5958128e7a02f4d84f1cd27ea319097f65af19ade7ec527049b3e20fc"
                         "43347b8cfea5e983f6b92b8466130b8874c5")

    def test_readme_vector_without_a_public_key(self):
        expected = ("982523786beafbcd56e13c234a8e4d0ef3610eb41125191c5f39eaf34caf3654665c9c7a9f64b056f8c9ad068a0b3c89"
                    "402e0e56b1b31a8742105118d6e29326")
        self.assertEqual(vhsm_login.report_data(NONCE, None, b"\x22" * 32).hex(), expected)
        self.assertEqual(vhsm_login.report_data(NONCE, bytes(32), b"\x22" * 32).hex(), expected)

    def test_plain_http_binds_32_zero_bytes(self):
        self.assertEqual(vhsm_login.report_data(NONCE, b"\x11" * 32),
                         vhsm_login.report_data(NONCE, b"\x11" * 32, bytes(32)))
        self.assertNotEqual(vhsm_login.report_data(NONCE, b"\x11" * 32),
                            vhsm_login.report_data(NONCE, b"\x11" * 32, b"\x22" * 32))

    def test_wrong_lengths_are_refused(self):
        for args, name in [((NONCE[:31],), "nonce"), ((NONCE, b"\x11" * 31), "K"), ((NONCE, None, b"\x22" * 33), "S")]:
            with self.assertRaisesRegex(ValueError, f"the binding's {name} must be"):
                vhsm_login.report_data(*args)

    def test_k_is_sha256_of_the_der_spki(self):
        key = ec.generate_private_key(ec.SECP384R1()).public_key()
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.assertEqual(vhsm_login.public_key_spki(key), der)
        self.assertEqual(len(vhsm_login.spki_sha256(der)), 32)


class HPKEVectorTests(unittest.TestCase):
    """RFC 9180 Appendix A, base mode."""

    def check_vector(self, kem_id, kdf_id, aead_id, ikm_e, sk_rm, pk_rm, enc, shared, key, base_nonce, ct0, ct1,
                     export_empty, sk_em=None):
        kem = vhsm_login.KEMS[kem_id]
        ephemeral = kem.derive_key_pair(bytes.fromhex(ikm_e))
        if sk_em:
            self.assertEqual(ephemeral.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                     serialization.NoEncryption()).hex(), sk_em)
        recipient = kem.private_key(bytes.fromhex(sk_rm))
        self.assertEqual(kem.serialize(recipient.public_key()).hex(), pk_rm)
        self.assertEqual(kem.decap(bytes.fromhex(enc), recipient).hex(), shared)
        sent_enc, sender = vhsm_login.setup_base_sender(kem_id, kdf_id, aead_id, recipient.public_key(), INFO,
                                                        ephemeral)
        self.assertEqual(sent_enc.hex(), enc)
        self.assertEqual((sender.key.hex(), sender.base_nonce.hex()), (key, base_nonce))
        self.assertEqual(sender.seal(AAD0, PT).hex(), ct0)
        self.assertEqual(sender.seal(AAD1, PT).hex(), ct1)
        receiver = vhsm_login.setup_base_receiver(kem_id, kdf_id, aead_id, bytes.fromhex(enc), recipient, INFO)
        self.assertEqual(receiver.open(AAD0, bytes.fromhex(ct0)), PT)
        self.assertEqual(receiver.open(AAD1, bytes.fromhex(ct1)), PT)
        self.assertEqual(receiver.export(b"", 32).hex(), export_empty)
        with self.assertRaises(Exception):  # sequence 2 does not open sequence 0's ciphertext
            receiver.open(AAD0, bytes.fromhex(ct0))

    def test_a1_x25519_sha256_aes128gcm(self):
        self.check_vector(
            0x0020, 0x0001, 0x0001,
            ikm_e="7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
            sk_em="52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
            sk_rm="4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
            pk_rm="3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
            enc="37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
            shared="fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc",
            key="4531685d41d65f03dc48f6b8302c05b0", base_nonce="56d890e5accaaf011cff4b7d",
            ct0="f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
            ct1="af2d7e9ac9ae7e270f46ba1f975be53c09f8d875bdc8535458c2494e8a6eab251c03d0c22a56b8ca42c2063b84",
            export_empty="3853fe2b4035195a573ffc53856e77058e15d9ea064de3e59f4961d0095250ee")

    def test_a1_derive_key_pair_of_the_recipient(self):
        kem = vhsm_login.KEMS[0x0020]
        ikm_r = bytes.fromhex("6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037")
        recipient = kem.derive_key_pair(ikm_r)
        self.assertEqual(kem.serialize(recipient.public_key()).hex(),
                         "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d")

    def test_a2_x25519_sha256_chacha20poly1305(self):
        kem = vhsm_login.KEMS[0x0020]
        recipient = kem.private_key(bytes.fromhex("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb"))
        ephemeral = kem.private_key(bytes.fromhex("f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600"))
        self.assertEqual(kem.serialize(recipient.public_key()).hex(),
                         "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")
        enc, sender = vhsm_login.setup_base_sender(0x0020, 0x0001, 0x0003, recipient.public_key(), INFO, ephemeral)
        self.assertEqual(enc.hex(), "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a")
        ct0 = "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28"
        self.assertEqual(sender.seal(AAD0, PT).hex(), ct0)
        receiver = vhsm_login.setup_base_receiver(0x0020, 0x0001, 0x0003, enc, recipient, INFO)
        self.assertEqual(receiver.open(AAD0, bytes.fromhex(ct0)), PT)
        self.assertEqual(receiver.export(b"", 32).hex(),
                         "4bbd6243b8bb54cec311fac9df81841b6fd61f56538a775e7c80a9f40160606e")
        self.assertEqual(receiver.export(b"\x00", 32).hex(),
                         "8c1df14732580e5501b00f82b10a1647b40713191b7c1240ac80e2b68808ba69")
        self.assertEqual(receiver.export(b"TestContext", 32).hex(),
                         "5acb09211139c43b3090489a9da433e8a30ee7188ba8b0a9a1ccf0c229283e53")

    def test_a3_p256_sha256_aes128gcm(self):
        kem = vhsm_login.KEMS[0x0010]
        recipient = kem.private_key(bytes.fromhex("f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2"))
        self.assertEqual(kem.serialize(recipient.public_key()).hex(),
                         "04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62f"
                         "b3d30ad6aa8f80e30f1d128aafd68a2ce72ea0")
        ephemeral = kem.derive_key_pair(bytes.fromhex(
            "4270e54ffd08d79d5928020af4686d8f6b7d35dbe470265f1f5aa22816ce860e"))
        enc, sender = vhsm_login.setup_base_sender(0x0010, 0x0001, 0x0001, recipient.public_key(), INFO, ephemeral)
        self.assertEqual(enc.hex(), "04a92719c6195d5085104f469a8b9814d5838ff72b60501e2c4466e5e67b325ac98536d7b61a1af4"
                                    "b78e5b7f951c0900be863c403ce65c9bfcb9382657222d18c4")
        ct0 = "5ad590bb8baa577f8619db35a36311226a896e7342a6d836d8b7bcd2f20b6c7f9076ac232e3ab2523f39513434"
        self.assertEqual(sender.seal(AAD0, PT).hex(), ct0)
        receiver = vhsm_login.setup_base_receiver(0x0010, 0x0001, 0x0001, enc, recipient, INFO)
        self.assertEqual(receiver.open(AAD0, bytes.fromhex(ct0)), PT)
        self.assertEqual(receiver.export(b"", 32).hex(),
                         "5e9bc3d236e1911d95e65b576a8a86d478fb827e8bdfe77b741b289890490d4d")

    def test_p384_derive_key_pair(self):
        # DHKEM(P-384, HKDF-SHA384), the KEM of vhsmd's P384-SHA384-AES256GCM suite (RFC 9180 publishes no P-384
        # vector): DeriveKeyPair's known answer from .NET's HPKE tests (ikm -> skRm, pkRm), which exercises the KEM's
        # suite_id, HKDF-SHA384 and the 48-byte candidate.
        kem = vhsm_login.KEMS[0x0011]
        key = kem.derive_key_pair(bytes.fromhex(
            "65fca3ea3b6db29a62bff28ec53c08710fab10b3798e59b678d3224296d5883f"
            "039123471784ce57b0d85a17cd521196"))
        self.assertEqual(key.private_numbers().private_value.to_bytes(48, "big").hex(),
                         "679172205e04663f40fda1018cd46c18ebaa876ede6998ba86b051614ca4d5e4"
                         "bfbea34b720617a4b958cc80f6305244")
        self.assertEqual(kem.serialize(key.public_key()).hex(),
                         "04a5f53da8564364255bc36850df793672782a5c9e4a7fb5fb2e2146eb12e4d8"
                         "477ab1f326a361dfd1e41212109510e813380547c68c0964c1908f16f67b902a"
                         "061be27b2f8b43f1fab1bf0dbf89f5167ce80aca2c210b8fc0f040699db9ee1229")

    def test_a_small_order_x25519_key_is_refused(self):
        kem = vhsm_login.KEMS[0x0020]
        with self.assertRaisesRegex(ValueError, "all zero"):
            kem.decap(bytes(32), x25519.X25519PrivateKey.generate())


def sealed_answer(suite, recipient_public, auth, nonce, info=vhsm_login.WRAP_INFO):
    """The data of a wrapped login answer, sealed here as vhsmd is specified to seal it."""
    kem_id, kdf_id, aead_id = vhsm_login.SUITES[suite]
    enc, sender = vhsm_login.setup_base_sender(kem_id, kdf_id, aead_id, recipient_public, info)
    sealed = enc + sender.seal(nonce, json.dumps(auth).encode())
    return {"sealed_auth": base64.b64encode(sealed).decode(), "suite": suite, "info": info.decode()}


class SealedAuthTests(unittest.TestCase):
    AUTH = {"client_token": "hvs.example", "accessor": "a", "policies": ["default", "reader"]}

    def keys(self):
        return {"X25519-SHA256-ChaCha20Poly1305": x25519.X25519PrivateKey.generate(),
                "P384-SHA384-AES256GCM": ec.generate_private_key(ec.SECP384R1())}

    def test_both_suites_open(self):
        for suite, key in self.keys().items():
            data = sealed_answer(suite, key.public_key(), self.AUTH, NONCE)
            self.assertEqual(vhsm_login.open_sealed_auth(data, key, NONCE), self.AUTH, suite)

    def test_another_nonce_does_not_open(self):
        for suite, key in self.keys().items():
            data = sealed_answer(suite, key.public_key(), self.AUTH, NONCE)
            with self.assertRaisesRegex(ValueError, "does not open with the key sent and this login's nonce"):
                vhsm_login.open_sealed_auth(data, key, bytes(32))

    def test_another_key_does_not_open(self):
        key = x25519.X25519PrivateKey.generate()
        data = sealed_answer("X25519-SHA256-ChaCha20Poly1305", key.public_key(), self.AUTH, NONCE)
        with self.assertRaisesRegex(ValueError, "does not open"):
            vhsm_login.open_sealed_auth(data, x25519.X25519PrivateKey.generate(), NONCE)

    def test_a_flipped_byte_does_not_open(self):
        key = ec.generate_private_key(ec.SECP384R1())
        data = sealed_answer("P384-SHA384-AES256GCM", key.public_key(), self.AUTH, NONCE)
        sealed = bytearray(base64.b64decode(data["sealed_auth"]))
        sealed[-1] ^= 1
        data["sealed_auth"] = base64.b64encode(sealed).decode()
        with self.assertRaisesRegex(ValueError, "does not open"):
            vhsm_login.open_sealed_auth(data, key, NONCE)

    def test_suite_info_and_key_kind_are_checked(self):
        key = x25519.X25519PrivateKey.generate()
        data = sealed_answer("X25519-SHA256-ChaCha20Poly1305", key.public_key(), self.AUTH, NONCE)
        with self.assertRaisesRegex(ValueError, "names suite 'X25519-SHA256-AES128GCM'"):
            vhsm_login.open_sealed_auth(dict(data, suite="X25519-SHA256-AES128GCM"), key, NONCE)
        with self.assertRaisesRegex(ValueError, "names info 'vhsm/login/auth/v2'"):
            vhsm_login.open_sealed_auth(dict(data, info="vhsm/login/auth/v2"), key, NONCE)
        with self.assertRaisesRegex(ValueError, "not the suite of the key sent"):
            vhsm_login.open_sealed_auth(dict(data, suite="P384-SHA384-AES256GCM"), key, NONCE)
        with self.assertRaisesRegex(ValueError, "too short"):
            vhsm_login.open_sealed_auth(dict(data, sealed_auth=base64.b64encode(bytes(40)).decode()), key, NONCE)
        with self.assertRaisesRegex(ValueError, "not standard base64"):
            vhsm_login.open_sealed_auth(dict(data, sealed_auth="not base64!"), key, NONCE)

    def test_another_info_does_not_open(self):
        key = x25519.X25519PrivateKey.generate()
        data = sealed_answer("X25519-SHA256-ChaCha20Poly1305", key.public_key(), self.AUTH, NONCE, b"other")
        with self.assertRaisesRegex(ValueError, "does not open"):
            vhsm_login.open_sealed_auth(dict(data, info=vhsm_login.WRAP_INFO.decode()), key, NONCE)


class FakeServer:
    """nonce and login on loopback HTTP as vhsmd specifies them (wrapped answer included), holding the client's login
    to the binding: REPORT_DATA (the report's bytes 0x50-0x8f) must be SHA-512("vhsm-login-v1" || nonce || K || 0^32)
    with K the SHA-256 of the public_key sent."""

    def __init__(self, clear_when_wrapped=False):
        import http.server
        import threading
        server = self
        self.nonces, self.requests, self.clear_when_wrapped = [], [], clear_when_wrapped

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                server.requests.append((self.path, body))
                if self.path.endswith("/nonce"):
                    nonce = os.urandom(32)
                    server.nonces.append(nonce)
                    self.answer(200, {"data": {"nonce": nonce.hex(), "expires_at": "", "ttl": 60}})
                    return
                nonce = bytes.fromhex(body["nonce"])
                report = base64.b64decode(body["report"])
                key = serialization.load_pem_public_key(body["public_key"].encode()) if "public_key" in body else None
                k = vhsm_login.spki_sha256(vhsm_login.public_key_spki(key)) if key else None
                if nonce not in server.nonces or report[0x50:0x90] != vhsm_login.report_data(nonce, k):
                    self.answer(403, {"errors": ["REPORT_DATA does not bind this login"]})
                    return
                server.nonces.remove(nonce)
                auth = {"client_token": "s.fake", "policies": ["default"], "metadata": {"role": body["role"]}}
                if body.get("wrap_to_public_key") and not server.clear_when_wrapped:
                    suite = ("X25519-SHA256-ChaCha20Poly1305" if isinstance(key, x25519.X25519PublicKey)
                             else "P384-SHA384-AES256GCM")
                    self.answer(200, {"auth": None, "data": sealed_answer(suite, key, auth, nonce)})
                else:
                    self.answer(200, {"auth": auth, "data": None})

            def answer(self, status, value):
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def fake_evidence(data):
    """A report that is nothing but its REPORT_DATA (the fake server checks only the binding)."""
    report = bytearray(vhsm_login.REPORT_SIZE)
    report[0x50:0x90] = data
    return bytes(report), [b"vcek"]


class LoginFlowTests(unittest.TestCase):
    """login() against FakeServer: the wire of both suites' wrapped answers, a bound public key, and refusals."""

    def setUp(self):
        self.server = FakeServer()

    def tearDown(self):
        self.server.close()

    def test_a_wrapped_login_opens_for_both_suites(self):
        for key in (x25519.X25519PrivateKey.generate(), ec.generate_private_key(ec.SECP384R1())):
            auth = vhsm_login.login(self.server.url, "workload", fake_evidence, wrap_key=key)
            self.assertEqual(auth["client_token"], "s.fake")
            path, body = self.server.requests[-1]
            self.assertEqual(path, "/v1/auth/sev-snp/login")
            self.assertIs(body["wrap_to_public_key"], True)
            self.assertEqual(serialization.load_pem_public_key(body["public_key"].encode()).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
                vhsm_login.public_key_spki(key.public_key()))
            self.assertEqual(body["certificates"], [base64.b64encode(b"vcek").decode()])

    def test_a_bound_public_key_without_wrapping_and_no_key(self):
        key = ec.generate_private_key(ec.SECP384R1()).public_key()
        self.assertEqual(vhsm_login.login(self.server.url, "r", fake_evidence, public_key=key)["metadata"],
                         {"role": "r"})
        self.assertNotIn("wrap_to_public_key", self.server.requests[-1][1])
        vhsm_login.login(self.server.url, "r", fake_evidence, mount="vms")
        self.assertEqual(self.server.requests[-1][0], "/v1/auth/vms/login")
        self.assertNotIn("public_key", self.server.requests[-1][1])

    def test_a_spent_nonce_is_the_servers_refusal_with_its_reasons(self):
        vhsm_login.login(self.server.url, "r", fake_evidence)
        spent = bytes.fromhex(self.server.requests[-1][1]["nonce"])
        with self.assertRaises(vhsm_login.Refused) as caught:
            vhsm_login.login(self.server.url, "r", fake_evidence, nonce=spent)
        self.assertEqual((caught.exception.status, caught.exception.reasons),
                         (403, ["REPORT_DATA does not bind this login"]))

    def test_an_auth_block_in_the_clear_when_wrapping_was_asked_is_refused(self):
        clear = FakeServer(clear_when_wrapped=True)
        try:
            with self.assertRaisesRegex(ValueError, "carries the auth block in the clear"):
                vhsm_login.login(clear.url, "r", fake_evidence, wrap_key=x25519.X25519PrivateKey.generate())
        finally:
            clear.close()


class CommandLineTests(unittest.TestCase):
    def main(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = vhsm_login.main(list(argv))
            except SystemExit as exit:
                status = exit.code
        return status, out.getvalue() + err.getvalue()

    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="vhsm-login-test-")

    def tearDown(self):
        os.rmdir(self.state)

    def test_role_and_state_are_required(self):
        self.assertEqual(self.main("http://127.0.0.1:1")[0], 2)
        self.assertEqual(self.main("http://127.0.0.1:1", "--role", "r")[0], 2)

    def test_usage_errors_exit_2_with_a_sentence(self):
        base = ["http://127.0.0.1:1", "--role", "r", "--emulator-state", self.state]
        for extra, sentence in [
            (["--measurement", "ab" * 47], "--measurement is 48 bytes (96 hex digits), got 47 bytes"),
            (["--host-data", "zz"], "--host-data 'zz' is not hex"),
            (["--vmpl", "4"], "--vmpl 4 is not 0 to 3"),
            (["--reported-tcb", "00"], "--reported-tcb is 8 bytes"),
        ]:
            status, output = self.main(*base, *extra)
            self.assertEqual(status, 2, extra)
            self.assertIn(sentence, output)
        status, output = self.main("ftp://127.0.0.1", "--role", "r", "--emulator-state", self.state)
        self.assertEqual((status, "is not an http:// or https:// URL" in output), (2, True))
        status, output = self.main("https://127.0.0.1:1", "--role", "r", "--emulator-state", self.state)
        self.assertEqual((status, "needs --ca FILE" in output), (2, True))
        status, output = self.main("http://127.0.0.1:1", "--role", "r", "--emulator-state", self.state + "/none")
        self.assertEqual((status, "is not a directory" in output), (2, True))

    def test_wrap_and_public_key_exclude_each_other(self):
        status, output = self.main("http://127.0.0.1:1", "--role", "r", "--emulator-state", self.state,
                                   "--wrap", "x25519", "--public-key", "k.pem")
        self.assertEqual(status, 2)
        self.assertIn("not allowed with argument", output)

    def test_an_unreachable_server_is_a_refusal_with_a_sentence(self):
        import socket
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        status, output = self.main(f"http://127.0.0.1:{port}", "--role", "r", "--emulator-state", self.state)
        self.assertEqual(status, 1)
        self.assertIn(f"the login to http://127.0.0.1:{port} failed", output)


if __name__ == "__main__":
    unittest.main()
