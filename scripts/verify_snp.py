#!/usr/bin/env python3
"""Independent SEV-SNP attestation report verifier (Python `cryptography` + standard library only).

Usage:
  python3 scripts/verify_snp.py REPORT.bin --ark ARK.pem --ask ASK.pem --vcek VCEK.der [--at RFC3339] [--bench N]

Checks, one line each ("ok <check>" or "FAIL <check>: <why>"):
  ark-self-signature, ask-signed-by-ark, vcek-signed-by-ask  RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48,
                                                             issuer name == parent subject name
  validity          every certificate is valid at --at (default: now)
  signing-key       KEY_INFO.SIGNING_KEY matches the endorsement (VCEK: hwID, no CSP_ID; VLEK: CSP_ID)
  tcb               the VCEK's SPL extensions == REPORTED_TCB (0x180)
  chip-id           the VCEK's hwID == CHIP_ID (0x1A0; Turin: first 8 bytes)
  report-signature  ECDSA P-384 / SHA-384 over bytes 0x000..0x29F (R at 0x2A0, S at 0x2E8, little-endian)

Exit status: 0 when every check passes, 1 when one fails, 2 when an input cannot be read.
--bench N repeats the whole verification N times in-process (from the bytes already read) and prints
"python-cryptography verifications/s: X"; it serves as the benchmark peer of `vhsm-bench`.
Certificates may be PEM or DER. The ASK may be an ASVK and the VCEK a VLEK.
"""

import argparse
import datetime
import sys
import time
import warnings

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

# AMD's VCEKs and VLEKs have serial number 0, which RFC 5280 forbids; cryptography warns on every load.
warnings.filterwarnings("ignore", message=".*serial number.*")

REPORT_SIZE = 0x4A0
SIGNED_END = 0x2A0
OFF_VERSION = 0x000
OFF_SIGNATURE_ALGO = 0x034
OFF_KEY_INFO = 0x048
OFF_REPORTED_TCB = 0x180
OFF_CPUID_FAM = 0x188
OFF_CHIP_ID = 0x1A0
OFF_SIG_R = 0x2A0
OFF_SIG_S = 0x2E8

AMD = "1.3.6.1.4.1.3704.1"
OID_PRODUCT_NAME = AMD + ".2"
OID_HWID = AMD + ".4"
OID_CSP_ID = AMD + ".5"
SPL_OIDS = {"fmc": AMD + ".3.9", "bl": AMD + ".3.1", "tee": AMD + ".3.2", "snp": AMD + ".3.3", "ucode": AMD + ".3.8"}
# Byte of each component within the 8 bytes of TCB_VERSION (report order, i.e. little-endian u64).
LAYOUT_MILAN_GENOA = {"bl": 0, "tee": 1, "snp": 6, "ucode": 7}
LAYOUT_TURIN = {"fmc": 0, "bl": 1, "tee": 2, "snp": 3, "ucode": 7}

AMD_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
RSASSA_PSS_OID = "1.2.840.113549.1.1.10"


class Unreadable(Exception):
    """An input that cannot be read or parsed (exit status 2)."""


def parse_certificate(data, label):
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as error:
        raise Unreadable(f"{label}: not an X.509 certificate ({error})") from error


def load_report(path):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise Unreadable(f"{path}: {error.strerror or error}") from error
    if len(data) != REPORT_SIZE:
        raise Unreadable(f"{path}: {len(data)} bytes, an attestation report has {REPORT_SIZE}")
    return data


def parse_instant(text):
    try:
        instant = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as error:
        raise Unreadable(f"--at {text!r} is not an RFC 3339 time") from error
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=datetime.timezone.utc)
    return instant


def der_integer(value):
    """A small non-negative DER INTEGER (AMD's SPL extensions), or None."""
    if len(value) < 3 or value[0] != 0x02 or value[1] != len(value) - 2 or value[1] > 8:
        return None
    return int.from_bytes(value[2:], "big", signed=True)


def der_string(value):
    """The text of a short IA5String/UTF8String, or None."""
    if len(value) < 2 or value[0] not in (0x16, 0x0C) or value[1] != len(value) - 2:
        return None
    return value[2:].decode("ascii", "replace")


def amd_extension(certificate, oid):
    for extension in certificate.extensions:
        if extension.oid.dotted_string == oid:
            return getattr(extension.value, "value", None)
    return None


def check_link(child, parent):
    """Why `child` is not signed by `parent` with AMD's RSASSA-PSS, or None when it is."""
    if child.issuer != parent.subject:
        return f"issuer {child.issuer.rfc4514_string()} is not {parent.subject.rfc4514_string()}"
    if child.signature_algorithm_oid.dotted_string != RSASSA_PSS_OID:
        return f"signature algorithm {child.signature_algorithm_oid.dotted_string} is not RSASSA-PSS"
    if not isinstance(child.signature_hash_algorithm, hashes.SHA384):
        return "the PSS hash is not SHA-384"
    key = parent.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return "the signer's key is not RSA"
    try:
        key.verify(child.signature, child.tbs_certificate_bytes, AMD_PSS, hashes.SHA384())
    except InvalidSignature:
        return "RSASSA-PSS (SHA-384, MGF1-SHA-384, salt 48) signature does not verify"
    return None


def is_turin(report, vcek):
    version = int.from_bytes(report[OFF_VERSION : OFF_VERSION + 4], "little")
    if version >= 3 and report[OFF_CPUID_FAM] == 0x1A:
        return True
    name_value = amd_extension(vcek, OID_PRODUCT_NAME)
    name = der_string(name_value) if name_value is not None else None
    return bool(name and name.startswith("Turin"))


def check_tcb(report, vcek):
    turin = is_turin(report, vcek)
    layout = LAYOUT_TURIN if turin else LAYOUT_MILAN_GENOA
    tcb = report[OFF_REPORTED_TCB : OFF_REPORTED_TCB + 8]
    problems = []
    for component, position in layout.items():
        value = amd_extension(vcek, SPL_OIDS[component])
        if value is None:
            problems.append(f"{component}SPL extension missing")
            continue
        level = der_integer(value)
        if level is None:
            problems.append(f"{component}SPL is not a DER INTEGER ({value.hex()})")
        elif level != tcb[position]:
            problems.append(f"{component}SPL {level} != REPORTED_TCB {tcb[position]}")
    if problems:
        return f"{'Turin' if turin else 'Milan/Genoa'} layout, REPORTED_TCB {tcb.hex()}: " + "; ".join(problems)
    return None


def check_chip_id(report, vcek):
    hwid = amd_extension(vcek, OID_HWID)
    if hwid is None:
        if amd_extension(vcek, OID_CSP_ID) is not None:
            return None  # a VLEK names the cloud provider, not the chip
        return "the VCEK has no hwID extension"
    if len(hwid) in (66, 10) and hwid[0] == 0x04 and hwid[1] == len(hwid) - 2:
        hwid = hwid[2:]  # some certificates wrap it in an OCTET STRING
    chip_id = report[OFF_CHIP_ID : OFF_CHIP_ID + 64]
    if is_turin(report, vcek):
        chip_id = chip_id[:8]
    if hwid != chip_id:
        return f"hwID {hwid.hex()} != CHIP_ID {chip_id.hex()}"
    return None


def check_signing_key(report, vcek):
    key_info = int.from_bytes(report[OFF_KEY_INFO : OFF_KEY_INFO + 4], "little")
    signing_key = (key_info >> 2) & 0x7
    has_hwid = amd_extension(vcek, OID_HWID) is not None
    has_csp = amd_extension(vcek, OID_CSP_ID) is not None
    if signing_key == 0:
        if not has_hwid or has_csp:
            return "KEY_INFO says VCEK, but the endorsement certificate is not a VCEK (hwID, no CSP_ID)"
    elif signing_key == 1:
        if not has_csp or has_hwid:
            return "KEY_INFO says VLEK, but the endorsement certificate is not a VLEK (CSP_ID, no hwID)"
    elif signing_key == 7:
        return "the report is unsigned (SIGNING_KEY 7)"
    else:
        return f"SIGNING_KEY {signing_key} is reserved"
    return None


def check_report_signature(report, vcek):
    algorithm = int.from_bytes(report[OFF_SIGNATURE_ALGO : OFF_SIGNATURE_ALGO + 4], "little")
    if algorithm != 1:
        return f"SIGNATURE_ALGO {algorithm} is not 1 (ECDSA P-384 with SHA-384)"
    key = vcek.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        return "the endorsement key is not ECDSA P-384"
    r = int.from_bytes(report[OFF_SIG_R : OFF_SIG_R + 48], "little")
    s = int.from_bytes(report[OFF_SIG_S : OFF_SIG_S + 48], "little")
    if r == 0 or s == 0:
        return "R or S is zero"
    try:
        key.verify(utils.encode_dss_signature(r, s), report[:SIGNED_END], ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        return "ECDSA P-384 signature over bytes 0x000..0x29F does not verify"
    return None


def check_validity(certificates, instant):
    problems = []
    for label, certificate in certificates:
        if instant < certificate.not_valid_before_utc:
            problems.append(f"{label} not valid before {certificate.not_valid_before_utc.isoformat()}")
        elif instant > certificate.not_valid_after_utc:
            problems.append(f"{label} expired {certificate.not_valid_after_utc.isoformat()}")
    return "; ".join(problems) if problems else None


def verify(report, ark, ask, vcek, instant):
    """[(check, problem or None)] in a fixed order."""
    return [
        ("ark-self-signature", check_link(ark, ark)),
        ("ask-signed-by-ark", check_link(ask, ark)),
        ("vcek-signed-by-ask", check_link(vcek, ask)),
        ("validity", check_validity([("ARK", ark), ("ASK", ask), ("VCEK", vcek)], instant)),
        ("signing-key", check_signing_key(report, vcek)),
        ("tcb", check_tcb(report, vcek)),
        ("chip-id", check_chip_id(report, vcek)),
        ("report-signature", check_report_signature(report, vcek)),
    ]


def main(argv):
    parser = argparse.ArgumentParser(description="Verify an AMD SEV-SNP attestation report against ARK, ASK, VCEK.")
    parser.add_argument("report", help="the 1184-byte attestation report")
    parser.add_argument("--ark", required=True, help="ARK certificate (PEM or DER)")
    parser.add_argument("--ask", required=True, help="ASK (or ASVK) certificate (PEM or DER)")
    parser.add_argument("--vcek", required=True, help="VCEK (or VLEK) certificate (DER or PEM)")
    parser.add_argument("--at", help="the instant the certificates must be valid at (RFC 3339; default now)")
    parser.add_argument("--bench", type=int, metavar="N", help="also verify N times in-process and print the rate")
    args = parser.parse_args(argv)

    try:
        report = load_report(args.report)
        paths = {"ark": args.ark, "ask": args.ask, "vcek": args.vcek}
        raw = {}
        for name, path in paths.items():
            try:
                with open(path, "rb") as handle:
                    raw[name] = handle.read()
            except OSError as error:
                raise Unreadable(f"{path}: {error.strerror or error}") from error
        certificates = {name: parse_certificate(data, paths[name]) for name, data in raw.items()}
        instant = parse_instant(args.at) if args.at else datetime.datetime.now(datetime.timezone.utc)
    except Unreadable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    results = verify(report, certificates["ark"], certificates["ask"], certificates["vcek"], instant)
    for check, problem in results:
        print(f"ok {check}" if problem is None else f"FAIL {check}: {problem}")
    passed = all(problem is None for _, problem in results)

    if args.bench:
        if args.bench < 1:
            print("error: --bench needs a positive count", file=sys.stderr)
            return 2
        # Each round parses the certificates from bytes, as a verifier receiving them would, and runs every check.
        start = time.perf_counter()
        for _ in range(args.bench):
            parsed = [parse_certificate(raw[name], name) for name in ("ark", "ask", "vcek")]
            verify(report, parsed[0], parsed[1], parsed[2], instant)
        elapsed = time.perf_counter() - start
        print(f"python-cryptography verifications/s: {args.bench / elapsed:.1f}")

    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
