#!/usr/bin/env python3
"""vhsm workload login (auth/sev-snp), a second implementation: standard library plus `cryptography`, nothing
from vhsm but the `vhsm emulator` commands it runs for the report.

The wire (vhsm-login-v1), on a mount of type sev-snp at auth/<mount>/:
  POST /v1/auth/<mount>/nonce  ->  {"data": {"nonce": <64 hex digits>, "expires_at", "ttl"}}
  POST /v1/auth/<mount>/login {"role", "nonce", "report" (base64 of the 1184-byte report), "certificates" (base64
  DER, VCEK or VLEK first), "public_key"? (PEM SubjectPublicKeyInfo), "wrap_to_public_key"? (true)}
  ->  {"auth": {"client_token", "accessor", "policies", "token_policies", "metadata", "lease_duration", ...}}
  REPORT_DATA = SHA-512("vhsm-login-v1" || nonce || K || S), K = SHA-256(DER SPKI of public_key) or 32 zero
  bytes without one, S = SHA-256(DER SPKI of the TLS leaf the client saw), 32 zero bytes over plain http://.
  With "wrap_to_public_key": {"auth": null, "data": {"sealed_auth": base64(enc || ciphertext), "suite", "info"}}:
  HPKE (RFC 9180) base mode to public_key, info "vhsm/login/auth/v1", AAD the 32 nonce bytes, plaintext the JSON
  auth object. Suites: "X25519-SHA256-ChaCha20Poly1305" (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
  ChaCha20Poly1305) and "P384-SHA384-AES256GCM" (DHKEM(P-384, HKDF-SHA384), HKDF-SHA384, AES-256-GCM).

Usage: vhsm_login.py URL --role NAME --emulator-state DIR [--mount sev-snp] [--vhsm PATH] [--measurement HEX]
         [--policy HEX] [--host-data HEX] [--id-block DIR] [--vmpl N] [--reported-tcb HEX]
         [--wrap x25519|p384 | --public-key PEM] [--ca FILE | --insecure] [--json] [-o FILE]
Exit 0 logged in (the token, or with --json the whole auth block), 1 refused (the server's reasons), 2 usage error
or unreadable input.
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from vhsm_attest import hex_option  # option parsing shared with the attested-TLS client (beside this file)

LABEL = b"vhsm-login-v1"
NONCE_SIZE = 32
REPORT_SIZE = 1184
WRAP_INFO = b"vhsm/login/auth/v1"
MAX_ANSWER = 1 << 20


# The binding.

def spki_sha256(spki_der):
    """SHA-256 of a DER SubjectPublicKeyInfo."""
    return hashlib.sha256(spki_der).digest()


def public_key_spki(public_key):
    """The DER SubjectPublicKeyInfo of a `cryptography` public key."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def report_data(nonce, key_sha256=None, audience_sha256=None):
    """REPORT_DATA = SHA-512("vhsm-login-v1" || nonce || K || S): K is SHA-256 of the public key's SPKI (32 zero bytes
    without one), S SHA-256 of the SPKI of the server's TLS leaf (32 zero bytes over plain HTTP)."""
    key_sha256 = bytes(32) if key_sha256 is None else bytes(key_sha256)
    audience_sha256 = bytes(32) if audience_sha256 is None else bytes(audience_sha256)
    for name, value, size in [("nonce", nonce, NONCE_SIZE), ("K", key_sha256, 32), ("S", audience_sha256, 32)]:
        if len(value) != size:
            raise ValueError(f"the binding's {name} must be {size} bytes, not {len(value)}")
    return hashlib.sha512(LABEL + bytes(nonce) + key_sha256 + audience_sha256).digest()


# HPKE (RFC 9180), base mode, receiver and sender, on `cryptography`'s DH and AEAD primitives and hmac.

def i2osp(value, length):
    return value.to_bytes(length, "big")


def hkdf_extract(hash_name, salt, ikm):
    return hmac.new(salt, ikm, hash_name).digest()


def hkdf_expand(hash_name, prk, info, length):
    size = hashlib.new(hash_name).digest_size
    if length > 255 * size:
        raise ValueError(f"HKDF-Expand cannot give {length} bytes with {hash_name}")
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hash_name).digest()
        out, counter = out + block, counter + 1
    return out[:length]


def labeled_extract(hash_name, suite_id, salt, label, ikm):
    return hkdf_extract(hash_name, salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(hash_name, suite_id, prk, label, info, length):
    return hkdf_expand(hash_name, prk, i2osp(length, 2) + b"HPKE-v1" + suite_id + label + info, length)


class DHKEM:
    """DHKEM(group, HKDF-hash) of RFC 9180 section 4.1."""

    def __init__(self, kem_id, name, hash_name, secret_size, curve=None, order=None, bitmask=0xFF):
        self.kem_id, self.name, self.hash_name, self.secret_size = kem_id, name, hash_name, secret_size
        self.curve, self.order, self.bitmask = curve, order, bitmask
        self.suite_id = b"KEM" + i2osp(kem_id, 2)
        self.key_size = 32 if curve is None else (order.bit_length() + 7) // 8

    def serialize(self, public_key):
        if self.curve is None:
            return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)

    def deserialize(self, data):
        if self.curve is None:
            if len(data) != 32:
                raise ValueError(f"an X25519 public key is 32 bytes, not {len(data)}")
            return x25519.X25519PublicKey.from_public_bytes(data)
        if len(data) != 1 + 2 * self.key_size or data[0] != 4:
            raise ValueError(f"a {self.name} public key is {1 + 2 * self.key_size} bytes, uncompressed (04 ...)")
        return ec.EllipticCurvePublicKey.from_encoded_point(self.curve, data)

    def private_key(self, scalar):
        if self.curve is None:
            return x25519.X25519PrivateKey.from_private_bytes(scalar)
        return ec.derive_private_key(int.from_bytes(scalar, "big"), self.curve)

    def generate(self):
        return x25519.X25519PrivateKey.generate() if self.curve is None else ec.generate_private_key(self.curve)

    def dh(self, private_key, public_key):
        if self.curve is None:
            try:
                shared = private_key.exchange(public_key)
            except ValueError:  # OpenSSL refuses the all-zero result itself
                shared = bytes(32)
            if shared == bytes(32):
                raise ValueError("the X25519 shared secret is all zero (a small-order public key)")
            return shared
        return private_key.exchange(ec.ECDH(), public_key)

    def derive_key_pair(self, ikm):
        """DeriveKeyPair (RFC 9180 section 7.1.3): the private key for the input keying material."""
        prk = labeled_extract(self.hash_name, self.suite_id, b"", b"dkp_prk", ikm)
        if self.curve is None:
            return self.private_key(labeled_expand(self.hash_name, self.suite_id, prk, b"sk", b"", 32))
        for counter in range(256):
            candidate = bytearray(labeled_expand(self.hash_name, self.suite_id, prk, b"candidate", bytes([counter]),
                                                 self.key_size))
            candidate[0] &= self.bitmask
            scalar = int.from_bytes(candidate, "big")
            if 0 < scalar < self.order:
                return self.private_key(bytes(candidate))
        raise ValueError("DeriveKeyPair found no scalar in 256 candidates")

    def extract_and_expand(self, dh, kem_context):
        prk = labeled_extract(self.hash_name, self.suite_id, b"", b"eae_prk", dh)
        return labeled_expand(self.hash_name, self.suite_id, prk, b"shared_secret", kem_context, self.secret_size)

    def encap(self, recipient_public, ephemeral=None):
        """(shared_secret, enc) to recipient_public; ephemeral: a private key (the tests' fixed one), else fresh."""
        ephemeral = ephemeral or self.generate()
        enc = self.serialize(ephemeral.public_key())
        shared = self.extract_and_expand(self.dh(ephemeral, recipient_public),
                                         enc + self.serialize(recipient_public))
        return shared, enc

    def decap(self, enc, recipient_private):
        shared = self.dh(recipient_private, self.deserialize(enc))
        return self.extract_and_expand(shared, enc + self.serialize(recipient_private.public_key()))


P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P384_ORDER = int("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)
KEMS = {
    0x0010: DHKEM(0x0010, "P-256", "sha256", 32, ec.SECP256R1(), P256_ORDER),
    0x0011: DHKEM(0x0011, "P-384", "sha384", 48, ec.SECP384R1(), P384_ORDER),
    0x0020: DHKEM(0x0020, "X25519", "sha256", 32),
}
KDFS = {0x0001: "sha256", 0x0002: "sha384", 0x0003: "sha512"}
AEADS = {0x0001: (AESGCM, 16), 0x0002: (AESGCM, 32), 0x0003: (ChaCha20Poly1305, 32)}
# The suites vhsmd seals a login's auth block with: name -> (kem, kdf, aead).
SUITES = {"X25519-SHA256-ChaCha20Poly1305": (0x0020, 0x0001, 0x0003), "P384-SHA384-AES256GCM": (0x0011, 0x0002, 0x0002)}


class HPKEContext:
    """An HPKE encryption context (RFC 9180 section 5.2): key, base_nonce, sequence number, exporter secret."""

    def __init__(self, kem_id, kdf_id, aead_id, shared_secret, info):
        self.hash_name = KDFS[kdf_id]
        aead, key_size = AEADS[aead_id]
        self.suite_id = b"HPKE" + i2osp(kem_id, 2) + i2osp(kdf_id, 2) + i2osp(aead_id, 2)
        psk_id_hash = labeled_extract(self.hash_name, self.suite_id, b"", b"psk_id_hash", b"")
        info_hash = labeled_extract(self.hash_name, self.suite_id, b"", b"info_hash", info)
        context = b"\x00" + psk_id_hash + info_hash  # mode_base
        secret = labeled_extract(self.hash_name, self.suite_id, shared_secret, b"secret", b"")
        self.key = labeled_expand(self.hash_name, self.suite_id, secret, b"key", context, key_size)
        self.base_nonce = labeled_expand(self.hash_name, self.suite_id, secret, b"base_nonce", context, 12)
        self.exporter_secret = labeled_expand(self.hash_name, self.suite_id, secret, b"exp", context,
                                              hashlib.new(self.hash_name).digest_size)
        self.aead, self.sequence = aead(self.key), 0

    def _nonce(self):
        return bytes(a ^ b for a, b in zip(self.base_nonce, i2osp(self.sequence, 12)))

    def seal(self, aad, plaintext):
        out = self.aead.encrypt(self._nonce(), plaintext, aad)
        self.sequence += 1
        return out

    def open(self, aad, ciphertext):
        out = self.aead.decrypt(self._nonce(), ciphertext, aad)
        self.sequence += 1
        return out

    def export(self, exporter_context, length):
        return labeled_expand(self.hash_name, self.suite_id, self.exporter_secret, b"sec", exporter_context, length)


def setup_base_sender(kem_id, kdf_id, aead_id, recipient_public, info, ephemeral=None):
    """(enc, context) of SetupBaseS."""
    shared, enc = KEMS[kem_id].encap(recipient_public, ephemeral)
    return enc, HPKEContext(kem_id, kdf_id, aead_id, shared, info)


def setup_base_receiver(kem_id, kdf_id, aead_id, enc, recipient_private, info):
    """The context of SetupBaseR."""
    return HPKEContext(kem_id, kdf_id, aead_id, KEMS[kem_id].decap(enc, recipient_private), info)


def open_sealed_auth(data, private_key, nonce):
    """The auth object of a wrapped login answer's data: HPKE base mode to private_key, info vhsm/login/auth/v1,
    AAD the nonce. ValueError with a sentence on any mismatch."""
    suite, info = data.get("suite"), data.get("info")
    if suite not in SUITES:
        raise ValueError(f"the sealed auth block names suite {suite!r}, not one of {', '.join(SUITES)}")
    if info != WRAP_INFO.decode():
        raise ValueError(f"the sealed auth block names info {info!r}, expected {WRAP_INFO.decode()!r}")
    kem_id, kdf_id, aead_id = SUITES[suite]
    kem = KEMS[kem_id]
    is_x25519 = isinstance(private_key, x25519.X25519PrivateKey)
    if is_x25519 != (kem.curve is None) or (kem.curve is not None and private_key.curve.name != kem.curve.name):
        raise ValueError(f"the answer is sealed with {suite}, which is not the suite of the key sent")
    try:
        sealed = base64.b64decode(data.get("sealed_auth") or "", validate=True)
    except ValueError as error:
        raise ValueError(f"sealed_auth is not standard base64: {error}") from None
    enc_size = 32 if kem.curve is None else 1 + 2 * kem.key_size
    if len(sealed) <= enc_size + 16:
        raise ValueError(f"sealed_auth is {len(sealed)} bytes: too short for enc ({enc_size}) and a sealed block")
    enc, ciphertext = sealed[:enc_size], sealed[enc_size:]
    try:
        plaintext = setup_base_receiver(kem_id, kdf_id, aead_id, enc, private_key, WRAP_INFO).open(nonce, ciphertext)
    except Exception as error:  # cryptography's InvalidTag has no message
        raise ValueError(f"sealed_auth does not open with the key sent and this login's nonce "
                         f"({type(error).__name__})") from None
    auth = json.loads(plaintext)
    if not isinstance(auth, dict):
        raise ValueError("the opened auth block is not a JSON object")
    return auth


# The report, from the emulator.

def emulator_evidence(vhsm, state, data, launch=(), reported_tcb=None):
    """(report bytes, [VCEK, ASK, ARK] DER) from `vhsm emulator report` and `vhsm emulator certs`."""
    with tempfile.TemporaryDirectory(prefix="vhsm-login-") as work:
        tcb = ["--reported-tcb", reported_tcb] if reported_tcb else []
        run([vhsm, "emulator", "report", "--state", state, "--report-data", data.hex(),
             "--output", os.path.join(work, "report.bin"), *launch, *tcb])
        run([vhsm, "emulator", "certs", "--state", state, "--out", os.path.join(work, "certs"), *tcb])
        with open(os.path.join(work, "report.bin"), "rb") as handle:
            report = handle.read()
        if len(report) != REPORT_SIZE or report[0x50:0x90] != data:
            raise ValueError(f"vhsm emulator report wrote {len(report)} bytes, not a {REPORT_SIZE}-byte report "
                             "holding the REPORT_DATA asked for")
        certificates = []
        with open(os.path.join(work, "certs", "vcek.der"), "rb") as handle:
            certificates.append(handle.read())
        for name in ("ask.pem", "ark.pem"):
            with open(os.path.join(work, "certs", name), "rb") as handle:
                certificates.append(x509.load_pem_x509_certificate(handle.read()).public_bytes(
                    serialization.Encoding.DER))
        return report, certificates


def run(command):
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"{' '.join(command[:3])} failed (exit {done.returncode}): {done.stderr.strip()}")


# HTTP, one connection for the nonce and the login, so S is the key of the server the login goes to.

class LeafRecordingHTTPSConnection(http.client.HTTPSConnection):
    """Remembers the leaf certificate (DER) of its latest handshake, also when http.client reconnects."""

    leaf = None

    def connect(self):
        super().connect()
        self.leaf = self.sock.getpeercert(binary_form=True)


class Server:
    def __init__(self, url, ca=None, insecure=False, timeout=30.0):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url} is not an http:// or https:// URL")
        self.prefix = parts.path.rstrip("/")
        if parts.scheme == "https":
            if ca:
                context = ssl.create_default_context(cafile=ca)
                context.check_hostname = False  # the pinned certificate names the key; vhsmd's names no host
            elif insecure:
                context = ssl.create_default_context()
                context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            else:
                raise ValueError("an https:// server needs --ca FILE (its certificate, e.g. from 'vhsm_attest.py "
                                 "--ca-out') or --insecure")
            self.connection = LeafRecordingHTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout,
                                                           context=context)
        else:
            self.connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        self.tls = parts.scheme == "https"

    def leaf_spki_sha256(self):
        """S: SHA-256 of the SPKI of the leaf this connection's handshake showed; 32 zero bytes over plain HTTP."""
        if not self.tls:
            return bytes(32)
        if self.connection.leaf is None:
            self.connection.connect()
        leaf = self.connection.leaf
        return spki_sha256(public_key_spki(x509.load_der_x509_certificate(leaf).public_key()))

    def post(self, path, body):
        """(status, parsed JSON or None, raw text)."""
        self.connection.request("POST", self.prefix + path, body=json.dumps(body).encode(),
                                headers={"Content-Type": "application/json", "Accept": "application/json"})
        answer = self.connection.getresponse()
        raw = answer.read(MAX_ANSWER + 1)
        if len(raw) > MAX_ANSWER:
            raise ValueError(f"the answer to {path} exceeds {MAX_ANSWER} bytes")
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return answer.status, parsed, raw.decode(errors="replace")


class Refused(Exception):
    """The server refused: its status and reasons."""

    def __init__(self, status, reasons):
        super().__init__(f"HTTP {status}: " + "; ".join(reasons))
        self.status, self.reasons = status, reasons


def reasons_of(parsed, raw):
    if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
        return [str(e) for e in parsed["errors"]]
    return [raw[:300] or "(no body)"]


def draw_nonce(server, mount):
    status, parsed, raw = server.post(f"/v1/auth/{mount}/nonce", {})
    if status != 200:
        raise Refused(status, reasons_of(parsed, raw))
    try:
        nonce = bytes.fromhex(parsed["data"]["nonce"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"auth/{mount}/nonce answered without a hex nonce: {raw[:300]}") from None
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"auth/{mount}/nonce answered a {len(nonce)}-byte nonce, not {NONCE_SIZE}")
    return nonce


def login(url, role, evidence, mount="sev-snp", public_key=None, wrap_key=None, ca=None, insecure=False,
          nonce=None):
    """Logs in and returns the auth block. evidence(report_data) -> (report, [DER certificates]); public_key: a
    public key to bind (K) without wrapping; wrap_key: a private key (X25519 or P-384) whose public key is bound
    and sent with wrap_to_public_key, and which opens the sealed answer. nonce: use this one instead of drawing
    one (tests of replay). Raises Refused with the server's reasons, ValueError on a malformed exchange."""
    server = Server(url, ca, insecure)
    if nonce is None:
        nonce = draw_nonce(server, mount)
    audience = server.leaf_spki_sha256()
    key = wrap_key.public_key() if wrap_key is not None else public_key
    data = report_data(nonce, spki_sha256(public_key_spki(key)) if key is not None else None, audience)
    report, certificates = evidence(data)
    body = {"role": role, "nonce": nonce.hex(), "report": base64.b64encode(report).decode(),
            "certificates": [base64.b64encode(c).decode() for c in certificates]}
    if key is not None:
        body["public_key"] = key.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    if wrap_key is not None:
        body["wrap_to_public_key"] = True
    status, parsed, raw = server.post(f"/v1/auth/{mount}/login", body)
    if server.leaf_spki_sha256() != audience:
        raise ValueError("the server's TLS key changed between the binding and the login")
    if status != 200:
        raise Refused(status, reasons_of(parsed, raw))
    if not isinstance(parsed, dict):
        raise ValueError(f"the login answer is not JSON: {raw[:300]}")
    if wrap_key is not None:
        if parsed.get("auth") is not None:
            raise ValueError("a wrapped login was asked for, but the answer carries the auth block in the clear")
        return open_sealed_auth(parsed.get("data") or {}, wrap_key, nonce)
    if not isinstance(parsed.get("auth"), dict):
        raise ValueError(f"the login answer has no auth block: {raw[:300]}")
    return parsed["auth"]


def main(argv=None):
    parser = argparse.ArgumentParser(description="Log in to vhsmd's auth/sev-snp with an emulated SEV-SNP report.")
    parser.add_argument("url", help="vhsmd, e.g. https://127.0.0.1:8200 (http:// in dev mode: S is 32 zero bytes)")
    parser.add_argument("--role", required=True, help="the sev-snp role to log in with")
    parser.add_argument("--mount", default="sev-snp", help="the auth method's path (default sev-snp)")
    parser.add_argument("--emulator-state", required=True, help="the emulated chip ('vhsm emulator init --state')")
    parser.add_argument("--vhsm", default=os.environ.get("VHSM", "vhsm"), help="the vhsm binary (default $VHSM)")
    parser.add_argument("--measurement", help="the launch's MEASUREMENT (96 hex digits)")
    parser.add_argument("--policy", help="the guest POLICY (hex, as 'vhsm emulator report')")
    parser.add_argument("--host-data", help="HOST_DATA (64 hex digits)")
    parser.add_argument("--id-block", help="an ID block directory ('vhsm idblock create')")
    parser.add_argument("--vmpl", type=int, help="the VMPL the report is asked for")
    parser.add_argument("--reported-tcb", help="REPORTED_TCB (16 hex digits), for the report and the VCEK")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--wrap", choices=["x25519", "p384"],
                      help="send an ephemeral key of this kind and ask for the auth block sealed to it (HPKE)")
    keys.add_argument("--public-key", help="bind this public key (PEM SPKI) and send it, without wrapping")
    parser.add_argument("--ca", help="the server's certificate (PEM) to verify https:// against")
    parser.add_argument("--insecure", action="store_true",
                        help="https:// without verifying the certificate (S still binds the key seen)")
    parser.add_argument("--json", action="store_true", help="print the whole auth block as JSON")
    parser.add_argument("-o", "--output", help="write the token to this file (mode 0600) instead of printing it")
    args = parser.parse_args(argv)
    try:
        launch = []
        if args.measurement:
            launch += ["--measurement", hex_option(args.measurement, "--measurement", 48).hex()]
        if args.host_data:
            launch += ["--host-data", hex_option(args.host_data, "--host-data", 32).hex()]
        if args.reported_tcb:
            hex_option(args.reported_tcb, "--reported-tcb", 8)
        if args.policy:
            int(args.policy, 16)
            launch += ["--policy", args.policy]
        if args.id_block:
            launch += ["--id-block", args.id_block]
        if args.vmpl is not None:
            if not 0 <= args.vmpl <= 3:
                raise ValueError(f"--vmpl {args.vmpl} is not 0 to 3")
            launch += ["--vmpl", str(args.vmpl)]
        if not os.path.isdir(args.emulator_state):
            raise ValueError(f"--emulator-state {args.emulator_state} is not a directory")
        public_key = None
        if args.public_key:
            with open(args.public_key, "rb") as handle:
                public_key = serialization.load_pem_public_key(handle.read())
        wrap_key = {"x25519": x25519.X25519PrivateKey.generate,
                    "p384": lambda: ec.generate_private_key(ec.SECP384R1())}[args.wrap]() if args.wrap else None
        Server(args.url, args.ca, args.insecure)  # the URL and TLS options, before any report is made
    except (OSError, ValueError) as error:
        print(f"vhsm_login: {error}", file=sys.stderr)
        return 2

    def evidence(data):
        return emulator_evidence(args.vhsm, args.emulator_state, data, launch, args.reported_tcb)

    try:
        auth = login(args.url, args.role, evidence, args.mount, public_key, wrap_key, args.ca, args.insecure)
    except Refused as refusal:
        print(f"vhsm_login: {args.url} refused the login (HTTP {refusal.status}):", file=sys.stderr)
        for reason in refusal.reasons:
            print(f"  - {reason}", file=sys.stderr)
        return 1
    except (OSError, ValueError, http.client.HTTPException) as error:
        print(f"vhsm_login: the login to {args.url} failed: {error}", file=sys.stderr)
        return 1
    if args.output:
        descriptor = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(auth["client_token"] + "\n")
    if args.json:
        print(json.dumps(auth, indent=2, sort_keys=True))
    elif not args.output:
        print(auth["client_token"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
