#!/usr/bin/env python3
"""vhsm attested TLS, the reference client: standard library plus `cryptography`, nothing from vhsm.

Before a secret goes to vhsmd, check that the TLS key it answers with lives in a genuine AMD SEV-SNP VM with an
expected MEASUREMENT. The wire format (vhsm-attested-tls-v1):
  GET /v1/sys/attestation?nonce=<64 hex digits>  ->  {"data": {"format", "nonce", "report", "certificates",
  "spki_sha256"}}: the raw 1184-byte report (base64), the DER certificates (base64; VCEK or VLEK, ASK or ASVK,
  ARK), spki_sha256 informative only. vhsmd's certificate carries the same over an all-zero nonce in the
  extension 1.3.9903.1.1: SEQUENCE { UTF8String format, OCTET STRING nonce, OCTET STRING report,
  SEQUENCE OF OCTET STRING certificates }.
  REPORT_DATA = SHA-512("vhsm-attested-tls-v1" || nonce || SHA-256(DER SubjectPublicKeyInfo of the TLS leaf)).

Usage: vhsm_attest.py URL [--measurement HEX ...] [--manifest out/manifest.json] [--id-key-digest HEX ...]
         [--author-key-digest HEX ...] [--min-guest-svn N] [--host-data HEX] [--min-tcb HEX] [--allow-debug]
         [--trust-emulator-root ARK.pem] [--cert VCEK] [--chain PEM] [--ca-out FILE] [--json] [--from-certificate]
At least one identity: --measurement, --manifest, --id-key-digest or --author-key-digest (lists are any-of).
Exit 0 trusted, 1 refused (every problem listed), 2 usage error or unreadable input.
Python: verify(url, measurements=[...], trust_emulator_root=None, id_key_digests=[...], ...) -> Result.
"""

import argparse
import base64
import dataclasses
import datetime
import hashlib
import json
import os
import socket
import ssl
import sys
import urllib.parse
import warnings

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

warnings.filterwarnings("ignore", message=".*serial number.*")  # AMD's VCEKs have serial 0

LABEL = b"vhsm-attested-tls-v1"
EVIDENCE_OID = "1.3.9903.1.1"
REPORT_SIZE = 1184
MAX_ANSWER = 1 << 20
# SHA-256 of the DER of AMD's ARKs (vhsm's Sources/SNP/Product.swift, arkFingerprint).
AMD_ARKS = {
    "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd": "Milan",
    "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1": "Genoa",
    "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a": "Turin",
}
AMD = "1.3.6.1.4.1.3704.1."
SPL_OIDS = {"fmc": AMD + "3.9", "bl": AMD + "3.1", "tee": AMD + "3.2", "snp": AMD + "3.3", "ucode": AMD + "3.8"}
# Byte of each component within TCB_VERSION, in report (little-endian) order.
MILAN_GENOA = {"bl": 0, "tee": 1, "snp": 6, "ucode": 7}
LAYOUTS = {"Milan": MILAN_GENOA, "Genoa": MILAN_GENOA, "Turin": {"fmc": 0, "bl": 1, "tee": 2, "snp": 3, "ucode": 7}}
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
DEBUG_BIT = 1 << 19
# Fields of the report a reference value is held against: (offset, length).
GUEST_SVN, MEASUREMENT, HOST_DATA = (0x004, 4), (0x090, 48), (0x0C0, 32)
ID_KEY_DIGEST, AUTHOR_KEY_DIGEST = (0x0E0, 48), (0x110, 48)


def field(report, where):
    offset, length = where
    return report[offset : offset + length]


def report_data(nonce, spki_sha256):
    """The 64 bytes REPORT_DATA must hold for a 32-byte nonce and the SHA-256 of the TLS key's SPKI."""
    return hashlib.sha512(LABEL + nonce + spki_sha256).digest()


def der_read(data, offset=0):
    """One DER TLV at offset: (tag, value, end). Single-byte tags, definite lengths only."""
    if offset + 2 > len(data):
        raise ValueError(f"DER truncated at byte {offset}")
    tag, length, offset = data[offset], data[offset + 1], offset + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise ValueError(f"DER length form 0x{length:02x} not supported at byte {offset - 1}")
        length, offset = int.from_bytes(data[offset : offset + count], "big"), offset + count
    if offset + length > len(data):
        raise ValueError(f"DER value of {length} bytes overruns the input at byte {offset}")
    return tag, data[offset : offset + length], offset + length


def der_items(data):
    """The TLVs of a constructed value's content, raw bytes included: [(tag, value, raw)]."""
    items, offset = [], 0
    while offset < len(data):
        tag, value, end = der_read(data, offset)
        items.append((tag, value, data[offset:end]))
        offset = end
    return items


def parse_evidence_extension(der):
    """The evidence in the extension's DER value, as sys/attestation's fields (raw bytes); ValueError if malformed."""
    tag, content, end = der_read(der)
    if tag != 0x30 or end != len(der):
        raise ValueError("the evidence is not one DER SEQUENCE")
    items = der_items(content)
    if [t for t, _, _ in items] != [0x0C, 0x04, 0x04, 0x30]:
        raise ValueError("the evidence is not SEQUENCE { UTF8String, OCTET STRING, OCTET STRING, SEQUENCE OF }")
    certificates = der_items(items[3][1])
    if any(t != 0x04 for t, _, _ in certificates) or len(certificates) > 8:
        raise ValueError("the evidence's certificates are not at most 8 OCTET STRINGs")
    return {"format": items[0][1].decode("utf-8"), "nonce": items[1][1], "report": items[2][1],
            "certificates": [value for _, value, _ in certificates]}


def spki_der(certificate_der):
    """The DER SubjectPublicKeyInfo of a certificate, byte for byte as it is in the certificate."""
    _, certificate, _ = der_read(certificate_der)
    _, tbs, _ = der_read(certificate)
    fields = der_items(tbs)
    return fields[6 if fields[0][0] == 0xA0 else 5][2]  # [version], serial, sigalg, issuer, validity, subject, SPKI


def tcb_levels(tcb, product):
    return {name: tcb[position] for name, position in LAYOUTS[product].items()}


def tcb_text(tcb, product):
    return ", ".join(f"{name} {level}" for name, level in tcb_levels(tcb, product).items()) + f" ({tcb.hex()})"


def tcb_below(reported, minimum, product):
    """The components of REPORTED_TCB below the minimum's, in the product's layout."""
    have, want = tcb_levels(reported, product), tcb_levels(minimum, product)
    return [name for name in want if have[name] < want[name]]


def extension(certificate, oid):
    for ext in certificate.extensions:
        if ext.oid.dotted_string == oid:
            return getattr(ext.value, "value", None)
    return None


def signed_by(child, parent):
    """True when parent's RSA key signed child with AMD's RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48)."""
    key = parent.public_key()
    if child.issuer != parent.subject or not isinstance(key, rsa.RSAPublicKey):
        return False
    if child.signature_algorithm_oid.dotted_string != "1.2.840.113549.1.1.10":
        return False
    try:
        key.verify(child.signature, child.tbs_certificate_bytes, PSS, hashes.SHA384())
        return True
    except (InvalidSignature, ValueError):
        return False


def fingerprint(certificate):
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclasses.dataclass
class Result:
    trusted: bool = False
    problems: list = dataclasses.field(default_factory=list)
    leaf_pem: str = ""
    spki_sha256: str = ""  # of the handshake's leaf
    fresh: bool = True  # False for --from-certificate: the evidence is as old as the certificate
    product: str = ""
    signer: str = ""
    root: str = ""
    measurement: str = ""
    reported_tcb: str = ""
    policy: str = ""
    chip_id: str = ""
    host_data: str = ""
    id_key_digest: str = ""
    author_key_digest: str = ""
    guest_svn: int = 0


def genuine(report, certificates, trust_emulator_root, now, result, cert=None, issuers=()):
    """Why the report is not genuine: AMD's chain (VCEK/VLEK, ASK/ASVK, ARK) to a pinned ARK or the named emulator
    root, the endorsement's SPLs = REPORTED_TCB and hwID = CHIP_ID, KEY_INFO, the report's signature. The endorsement
    is `cert` when given (--cert), else the evidence's first certificate; the issuers are looked for among the
    evidence's certificates, `issuers` (--chain) and the emulator root. Sets result.product, signer and root."""
    problems = []
    u32 = lambda offset: int.from_bytes(report[offset : offset + 4], "little")
    tcb = report[0x180:0x188]
    try:
        certificates = [x509.load_der_x509_certificate(c) for c in certificates]
    except ValueError as error:
        return [f"a certificate of the evidence does not parse: {error}"]
    if cert is None and not certificates:
        return ["the evidence carries no VCEK or VLEK and none was given (--cert): cannot check that AMD signed "
                "the report"]
    roots, pool = dict(AMD_ARKS), certificates + list(issuers)
    if trust_emulator_root is not None:
        roots[fingerprint(trust_emulator_root)] = "operator-trusted (--trust-emulator-root)"
        pool.append(trust_emulator_root)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    endorsement = cert if cert is not None else certificates[0]
    chain = [endorsement]  # VCEK/VLEK, ASK/ASVK, ARK: each signed by the next, the ARK by itself
    while len(chain) < 3:
        issuer = next((c for c in pool if signed_by(chain[-1], c)), None)
        if issuer is None:
            problems.append(f"no certificate signs {chain[-1].subject.rfc4514_string()} with RSASSA-PSS "
                            "SHA-384 (salt 48): the certificates do not chain")
            break
        chain.append(issuer)
    if len(chain) == 3:
        result.root = roots.get(fingerprint(chain[2]), "")
        if not signed_by(chain[2], chain[2]):
            problems.append(f"the root {chain[2].subject.rfc4514_string()} is not self-signed")
        for certificate in chain[1:]:
            if certificate.public_key().key_size != 4096:
                problems.append(f"{certificate.subject.rfc4514_string()} has no RSA-4096 key")
        if not result.root:
            problems.append(f"the root {chain[2].subject.rfc4514_string()} (SHA-256 {fingerprint(chain[2])}) is "
                            "neither an AMD ARK nor the one --trust-emulator-root names")
    for certificate in chain:
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            problems.append(f"{certificate.subject.rfc4514_string()} is valid from "
                            f"{certificate.not_valid_before_utc} to {certificate.not_valid_after_utc}, not now")
    hwid, csp = extension(endorsement, AMD + "4"), extension(endorsement, AMD + "5")
    result.signer = {(True, False): "VCEK", (False, True): "VLEK"}.get((hwid is not None, csp is not None), "")
    claimed = {0: "VCEK", 1: "VLEK"}.get((u32(0x48) >> 2) & 7, "unsigned or reserved")
    if result.signer != claimed:
        problems.append(f"KEY_INFO says the report is signed by {claimed}, the endorsement certificate is a "
                        f"{result.signer or 'neither VCEK nor VLEK'}")
    name = extension(endorsement, AMD + "2") or b""
    from_cert = next((p for p in LAYOUTS if name[2:].decode("ascii", "replace").startswith(p)), "")
    family, model = report[0x188], report[0x189]
    from_report = "" if u32(0) < 3 else "Milan" if family == 0x19 and model < 0x10 else "Genoa" \
        if family == 0x19 and (model >> 4) in (1, 0xA) else "Turin" if family == 0x1A and model < 0x12 else ""
    result.product = from_report or from_cert
    if not result.product or (from_report and from_cert and from_report != from_cert):
        problems.append(f"the product is unknown or inconsistent: report {from_report or '?'}, "
                        f"certificate {from_cert or '?'}")
    else:
        for component, position in LAYOUTS[result.product].items():
            value = extension(endorsement, SPL_OIDS[component])
            integer = value is not None and len(value) > 2 and value[0] == 2 and value[1] == len(value) - 2
            level = int.from_bytes(value[2:], "big") if integer else None
            if level != tcb[position]:
                problems.append(f"the endorsement's {component}SPL is {level}, REPORTED_TCB says {tcb[position]}")
        if result.signer == "VCEK":
            chip_id, length = report[0x1A0:0x1E0], 8 if result.product == "Turin" else 64
            hwid = hwid[2:] if len(hwid) in (66, 10) and hwid[0] == 4 else hwid  # some wrap it in an OCTET STRING
            if hwid != chip_id[:length] or any(chip_id[length:]):
                problems.append(f"the VCEK's hwID {hwid.hex()} is not CHIP_ID {chip_id.hex()}: "
                                "another chip's VCEK")
    key = endorsement.public_key()
    r, s = int.from_bytes(report[0x2A0:0x2E8], "little"), int.from_bytes(report[0x2E8:0x330], "little")
    if u32(0x34) != 1 or not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        problems.append("the report is not signed with ECDSA P-384 SHA-384 by the endorsement key")
    else:
        try:
            key.verify(utils.encode_dss_signature(r, s), report[:0x2A0], ec.ECDSA(hashes.SHA384()))
        except (InvalidSignature, ValueError):
            problems.append("the report's ECDSA P-384 signature does not verify with the endorsement key")
    return problems


def any_of(name, expected, actual):
    """The problem of a field that is none of the expected values: [] when it is one, or when none is expected."""
    if not expected or actual in expected:
        return []
    return [f"{name}: expected {'one of ' if len(expected) > 1 else ''}{', '.join(e.hex() for e in expected)}, "
            f"got {actual.hex()}"]


def unacceptable(report, product, measurements=(), id_key_digests=(), author_key_digests=(), min_guest_svn=None,
                 host_data=None, min_tcb=None, allow_debug=False):
    """Every reference value the report does not meet, each 'FIELD: expected X, got Y' (vhsm's ReferenceValues).
    Lists are any-of; an identity (a measurement, an ID key digest or an author key digest) is required."""
    problems = []
    if not (measurements or id_key_digests or author_key_digests):
        problems.append("no expected MEASUREMENT, ID_KEY_DIGEST or AUTHOR_KEY_DIGEST was given: verifying 'some "
                        "SEV-SNP VM' is not verification")
    problems += any_of("MEASUREMENT", measurements, field(report, MEASUREMENT))
    problems += any_of("ID_KEY_DIGEST", id_key_digests, field(report, ID_KEY_DIGEST))
    problems += any_of("AUTHOR_KEY_DIGEST", author_key_digests, field(report, AUTHOR_KEY_DIGEST))
    guest_svn = int.from_bytes(field(report, GUEST_SVN), "little")
    if min_guest_svn is not None and guest_svn < min_guest_svn:
        problems.append(f"GUEST_SVN: expected at least {min_guest_svn}, got {guest_svn}")
    if host_data is not None and field(report, HOST_DATA) != host_data:
        problems.append(f"HOST_DATA: expected {host_data.hex()}, got {field(report, HOST_DATA).hex()}")
    tcb, policy = report[0x180:0x188], int.from_bytes(report[0x08:0x10], "little")
    if min_tcb is not None and product:
        below = tcb_below(tcb, min_tcb, product)
        if below:
            problems.append(f"REPORTED_TCB: expected at least {tcb_text(min_tcb, product)}, got "
                            f"{tcb_text(tcb, product)} ({', '.join(below)} below)")
    if policy & DEBUG_BIT and not allow_debug:
        problems.append(f"POLICY: expected debug not allowed, got 0x{policy:x} allows debug (the host can read and "
                        "change the guest's memory); --allow-debug accepts it")
    return problems


def check(answer, nonce, leaf_der, measurements=(), trust_emulator_root=None, allow_debug=False, min_tcb=None,
          now=None, *, id_key_digests=(), author_key_digests=(), min_guest_svn=None, host_data=None, cert=None,
          chain=()):
    """Judges `answer` (sys/attestation's data, or parse_evidence_extension's fields) for the nonce sent and the
    leaf certificate seen in the handshake. measurements, id_key_digests, author_key_digests: 48-byte values, each
    list any-of; host_data: 32 bytes; min_tcb: 8 bytes; trust_emulator_root and cert: certificates, chain: a list of
    them (the endorsement when the evidence has none, the ASK/ASVK and ARK when it lacks them)."""
    result = Result()
    problems = result.problems
    try:
        result.leaf_pem = x509.load_der_x509_certificate(leaf_der).public_bytes(serialization.Encoding.PEM).decode()
        spki_sha256 = hashlib.sha256(spki_der(leaf_der)).digest()
        result.spki_sha256 = spki_sha256.hex()
    except (ValueError, IndexError) as error:
        problems.append(f"the certificate of the TLS handshake does not parse: {error}")
        return result
    try:
        if not isinstance(answer, dict):
            raise TypeError(f"a {type(answer).__name__} where an object is expected")
        fields = {k: answer[k] for k in ("format", "nonce", "report", "certificates")}
        if isinstance(fields["report"], str):  # the JSON answer: hex nonce, base64 report and certificates
            fields["nonce"] = bytes.fromhex(fields["nonce"])
            fields["report"] = base64.b64decode(fields["report"], validate=True)
            fields["certificates"] = [base64.b64decode(c, validate=True) for c in fields["certificates"]]
    except (KeyError, TypeError, ValueError) as error:
        problems.append(f"the attestation answer is malformed: {error!r}")
        return result
    if fields["format"] != LABEL.decode():
        problems.append(f"the evidence's format is {fields['format']!r}, not {LABEL.decode()!r}")
    if fields["nonce"] != nonce:
        problems.append(f"the answer is for nonce {fields['nonce'].hex()}, not for the nonce sent ({nonce.hex()}): "
                        "a replayed or misdirected answer")
    report = fields["report"]
    if len(report) != REPORT_SIZE:
        problems.append(f"the report has {len(report)} bytes; a report has {REPORT_SIZE}")
        return result
    policy = int.from_bytes(report[0x08:0x10], "little")
    result.measurement, result.reported_tcb = field(report, MEASUREMENT).hex(), report[0x180:0x188].hex()
    result.policy, result.chip_id, result.host_data = f"0x{policy:x}", report[0x1A0:0x1E0].hex(), \
        field(report, HOST_DATA).hex()
    result.id_key_digest, result.author_key_digest = field(report, ID_KEY_DIGEST).hex(), \
        field(report, AUTHOR_KEY_DIGEST).hex()
    result.guest_svn = int.from_bytes(field(report, GUEST_SVN), "little")

    # Binding: REPORT_DATA commits to the nonce sent and the key of this handshake.
    if report[0x50:0x90] != report_data(nonce, spki_sha256):
        announced = answer.get("spki_sha256")  # informative only: it names the key a man in the middle hides
        announced = announced.lower() if isinstance(announced, str) and len(announced) == 64 else ""
        if announced and announced != spki_sha256.hex() and all(c in "0123456789abcdef" for c in announced) and \
                report[0x50:0x90] == report_data(fields["nonce"], bytes.fromhex(announced)):
            problems.append(f"the report binds another TLS key: expected SPKI SHA-256 {spki_sha256.hex()} (the "
                            f"certificate in this handshake), the report binds {announced}: someone between this "
                            "client and vhsmd terminates TLS with their own key")
        else:
            problems.append(f"REPORT_DATA does not bind this nonce and the handshake's key (SPKI SHA-256 "
                            f"{spki_sha256.hex()}): expected {report_data(nonce, spki_sha256).hex()}, got "
                            f"{report[0x50:0x90].hex()}")

    # Genuine: AMD's chain to a pinned root, the endorsement's bindings to the report, the report's signature.
    problems += genuine(report, fields["certificates"], trust_emulator_root, now, result, cert, chain)

    # Acceptable: the reference values.
    problems += unacceptable(report, result.product, measurements, id_key_digests, author_key_digests,
                             min_guest_svn, host_data, min_tcb, allow_debug)
    result.trusted = not problems
    return result


def connect(url, timeout):
    """A TLS connection to url's host and port; the certificate is not verified here (the evidence decides)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"{url} is not an https:// URL")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    raw = socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout)
    try:
        return context.wrap_socket(raw, server_hostname=parts.hostname)
    except BaseException:
        raw.close()
        raise


def dechunk(data):
    """The body of a chunked transfer, or None while it is incomplete."""
    body = b""
    while True:
        size, found, data = data.partition(b"\r\n")
        if not found:
            return None
        size = int(size.split(b";")[0], 16)
        if size == 0:
            return body
        if len(data) < size + 2:
            return None
        body, data = body + data[:size], data[size + 2 :]


def read_response(tls):
    """(status, body) of one HTTP/1.1 response, at most MAX_ANSWER bytes: Content-Length, chunked, or until close."""
    data, head, headers, body = b"", None, {}, None
    while body is None:
        if head is None and b"\r\n\r\n" in data:
            head, _, data = data.partition(b"\r\n\r\n")
            lines = head.decode("iso-8859-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if head is not None and headers.get("transfer-encoding", "").lower() == "chunked":
            body = dechunk(data)
        elif head is not None and "content-length" in headers and len(data) >= int(headers["content-length"]):
            body = data[: int(headers["content-length"])]
        if body is not None:
            break
        chunk = tls.recv(65536)
        if not chunk:
            if head is None or headers.get("transfer-encoding") or "content-length" in headers:
                raise ValueError("the server closed the connection in the middle of its HTTP answer")
            body = data
        data += chunk
        if len(data) > MAX_ANSWER:
            raise ValueError(f"the answer exceeds {MAX_ANSWER} bytes")
    status = head.decode("iso-8859-1").split("\r\n")[0].split(" ", 2)
    return (status[1] if len(status) > 1 else "?", body)


def fetch(url, nonce, timeout=10.0):
    """(leaf DER, sys/attestation's data) for nonce, both from the SAME TLS connection."""
    parts = urllib.parse.urlsplit(url)
    with connect(url, timeout) as tls:
        leaf = tls.getpeercert(binary_form=True)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        path = parts.path.rstrip("/") + "/v1/sys/attestation?nonce=" + nonce.hex()
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{parts.port or 443}\r\nAccept: application/json\r\n"
                    "Connection: close\r\n\r\n".encode())
        status, body = read_response(tls)
    if status != "200":
        raise ValueError(f"sys/attestation answered HTTP {status}: {body[:300].decode(errors='replace')}")
    return leaf, json.loads(body)["data"]


def peer_certificate(url, timeout=10.0):
    """The leaf certificate (DER) of url's TLS handshake, nothing sent."""
    with connect(url, timeout) as tls:
        return tls.getpeercert(binary_form=True)


def read_certificates(path):
    """The certificates of a file: every CERTIFICATE block of PEM text, or one DER certificate."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as error:
        raise ValueError(f"{path} holds no certificate (DER or PEM): {error}") from None


def as_bytes(values):
    return [bytes.fromhex(v) if isinstance(v, str) else bytes(v) for v in values]


def verify(url, measurements=(), trust_emulator_root=None, allow_debug=False, min_tcb=None, from_certificate=False,
           timeout=10.0, *, id_key_digests=(), author_key_digests=(), min_guest_svn=None, host_data=None, cert=None,
           chain=()):
    """Verifies vhsmd at url. measurements, id_key_digests, author_key_digests: hex strings or bytes (48 bytes
    each, any-of); host_data: hex or 32 bytes; min_tcb: 16 hex digits (TCB_VERSION in report order) or 8 bytes;
    trust_emulator_root and cert: a file path (PEM, or DER for cert) or a certificate; chain: a PEM path or a list
    of certificates. At least one measurement, ID key digest or author key digest is expected."""
    if isinstance(trust_emulator_root, (str, os.PathLike)):
        trust_emulator_root = read_certificates(trust_emulator_root)[0]
    if isinstance(cert, (str, os.PathLike)):
        cert = read_certificates(cert)[0]
    chain = read_certificates(chain) if isinstance(chain, (str, os.PathLike)) else list(chain)
    reference = {"measurements": as_bytes(measurements), "id_key_digests": as_bytes(id_key_digests),
                 "author_key_digests": as_bytes(author_key_digests), "min_guest_svn": min_guest_svn,
                 "host_data": bytes.fromhex(host_data) if isinstance(host_data, str) else host_data,
                 "min_tcb": bytes.fromhex(min_tcb) if isinstance(min_tcb, str) else min_tcb}
    try:
        if from_certificate:
            nonce, leaf = bytes(32), peer_certificate(url, timeout)
            found = next((e for e in x509.load_der_x509_certificate(leaf).extensions
                          if e.oid.dotted_string == EVIDENCE_OID), None)
            if found is None:
                return Result(problems=[f"the certificate of {url} carries no evidence (extension {EVIDENCE_OID})"])
            answer = parse_evidence_extension(found.value.value)
        else:
            nonce = os.urandom(32)
            leaf, answer = fetch(url, nonce, timeout)
    except (OSError, ValueError, KeyError, TypeError) as error:
        return Result(problems=[f"cannot get evidence from {url}: {error}"])
    result = check(answer, nonce, leaf, trust_emulator_root=trust_emulator_root, allow_debug=allow_debug,
                   cert=cert, chain=chain, **reference)
    result.fresh = not from_certificate
    return result


def hex_option(text, option, count):
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{option} {text!r} is not hex") from None
    if len(value) != count:
        raise ValueError(f"{option} is {count} bytes ({2 * count} hex digits), got {len(value)} bytes")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description="Verify that vhsmd's TLS key is in a genuine, expected SEV-SNP VM.")
    parser.add_argument("url")
    parser.add_argument("--measurement", action="append", default=[],
                        help="expected MEASUREMENT (96 hex digits); repeat to accept any of several")
    parser.add_argument("--manifest", help="out/manifest.json from 'make image': its measurement is expected")
    parser.add_argument("--id-key-digest", action="append", default=[],
                        help="expected ID_KEY_DIGEST (96 hex digits, a signed image); repeat to accept any of several")
    parser.add_argument("--author-key-digest", action="append", default=[],
                        help="expected AUTHOR_KEY_DIGEST (96 hex digits); repeat to accept any of several")
    parser.add_argument("--min-guest-svn", type=int,
                        help="minimum GUEST_SVN (with --id-key-digest or --author-key-digest)")
    parser.add_argument("--host-data", help="expected HOST_DATA (64 hex digits)")
    parser.add_argument("--min-tcb", help="minimum REPORTED_TCB per component (16 hex digits, report order)")
    parser.add_argument("--allow-debug", action="store_true", help="accept a guest policy that allows DEBUG")
    parser.add_argument("--trust-emulator-root", help="also trust this ARK (PEM), the emulator's")
    parser.add_argument("--cert", help="the VCEK or VLEK (DER or PEM), when the evidence carries none")
    parser.add_argument("--chain", help="PEM with the ASK or ASVK and/or the ARK, when the evidence lacks them")
    parser.add_argument("--ca-out", help="write the verified leaf certificate (PEM) here, only when trusted")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--from-certificate", action="store_true",
                        help="verify the certificate's evidence (all-zero nonce) instead of a fresh report")
    args = parser.parse_args(argv)
    try:
        if urllib.parse.urlsplit(args.url).scheme != "https" or not urllib.parse.urlsplit(args.url).hostname:
            raise ValueError(f"{args.url} is not an https:// URL")
        measurements = [hex_option(m, "--measurement", 48) for m in args.measurement]
        if args.manifest:
            with open(args.manifest) as handle:
                measurements.append(hex_option(json.load(handle)["measurement"], f"{args.manifest}'s measurement",
                                               48))
        id_key_digests = [hex_option(d, "--id-key-digest", 48) for d in args.id_key_digest]
        author_key_digests = [hex_option(d, "--author-key-digest", 48) for d in args.author_key_digest]
        if not (measurements or id_key_digests or author_key_digests):
            raise ValueError("say which VM you expect: give --measurement HEX, --manifest FILE (out/manifest.json "
                             "from 'make image'), --id-key-digest HEX or --author-key-digest HEX. Verifying 'some "
                             "SEV-SNP VM' is not verification: any VM on any AMD chip would pass")
        if args.min_guest_svn is not None:
            if not (id_key_digests or author_key_digests):
                raise ValueError(f"--min-guest-svn {args.min_guest_svn} applies to signed images: give the signing "
                                 "key with --id-key-digest or --author-key-digest too")
            if not 0 <= args.min_guest_svn < 1 << 32:
                raise ValueError(f"--min-guest-svn {args.min_guest_svn} is not a 32-bit unsigned number")
        host_data = hex_option(args.host_data, "--host-data", 32) if args.host_data else None
        min_tcb = hex_option(args.min_tcb, "--min-tcb", 8) if args.min_tcb else None
        root = read_certificates(args.trust_emulator_root)[0] if args.trust_emulator_root else None
        cert = read_certificates(args.cert)[0] if args.cert else None
        chain = read_certificates(args.chain) if args.chain else []
    except (OSError, ValueError, KeyError) as error:
        print(f"vhsm_attest: {error}", file=sys.stderr)
        return 2
    result = verify(args.url, measurements, root, args.allow_debug, min_tcb, args.from_certificate,
                    id_key_digests=id_key_digests, author_key_digests=author_key_digests,
                    min_guest_svn=args.min_guest_svn, host_data=host_data, cert=cert, chain=chain)
    if args.json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
    else:
        print(f"{args.url}: {'TRUSTED' if result.trusted else 'REFUSED'}")
        signed = any(c != "0" for c in result.id_key_digest + result.author_key_digest)  # an ID block was given
        for label, value in [("signed by", result.signer and f"{result.signer} of a {result.product} chip"),
                             ("root", result.root), ("tls spki", result.spki_sha256),
                             ("measurement", result.measurement), ("reported tcb", result.reported_tcb),
                             ("policy", result.policy),
                             ("host data", result.host_data if args.host_data else ""),
                             ("id key digest", result.id_key_digest if signed else ""),
                             ("author digest", result.author_key_digest if signed else ""),
                             ("guest svn", str(result.guest_svn) if signed else "")]:
            if value:
                print(f"  {label:<13} {value}")
        if not result.fresh:
            print("  freshness     NOT checked: the evidence in the certificate is as old as the certificate")
        for problem in result.problems:
            print(f"  - {problem}")
    if result.trusted and args.ca_out:
        with open(args.ca_out, "w") as handle:
            handle.write(result.leaf_pem)
        if not args.json:
            print(f"  wrote the verified certificate to {args.ca_out} (for curl --cacert, VAULT_CACERT, hvac verify=)")
    return 0 if result.trusted else 1


if __name__ == "__main__":
    sys.exit(main())
