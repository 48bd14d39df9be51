#!/usr/bin/env python3
"""Rewrites a vhsm LUKS2 header on the host the way a hostile host could, with valid checksums, so that only
vhsm's own checks can catch it (the QEMU tier's tampered-header scenarios).

  luks-tamper.py IMAGE cipher-null   the data segment's cipher becomes cipher_null-ecb (CVE-2025-59054 class)
  luks-tamper.py IMAGE break-mac     one hex digit of the vhsm-snp token's MAC changes

Both binary headers (primary at 0, secondary at hdr_size) get the same JSON; each checksum (SHA-256 over the
header and its JSON area, checksum field zeroed) is recomputed.
"""
import hashlib
import json
import struct
import sys

CSUM_OFFSET, CSUM_LENGTH, JSON_OFFSET = 448, 64, 4096


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("cipher-null", "break-mac"):
        sys.exit(__doc__)
    path, mode = sys.argv[1], sys.argv[2]
    with open(path, "r+b") as disk:
        primary = disk.read(4096)
        if primary[:6] != b"LUKS\xba\xbe":
            sys.exit(f"{path}: no LUKS2 header")
        size = struct.unpack(">Q", primary[8:16])[0]
        disk.seek(0)
        area = bytearray(disk.read(size))
        metadata = json.loads(area[JSON_OFFSET:].rstrip(b"\0"))
        if mode == "cipher-null":
            for segment in metadata["segments"].values():
                segment["encryption"] = "cipher_null-ecb"
        else:
            tokens = [t for t in metadata["tokens"].values() if t.get("type") == "vhsm-snp"]
            if not tokens:
                sys.exit(f"{path}: no vhsm-snp token")
            mac = tokens[0]["mac"]
            tokens[0]["mac"] = ("1" if mac[0] != "1" else "2") + mac[1:]
        text = json.dumps(metadata, separators=(",", ":")).encode()
        if len(text) > size - JSON_OFFSET:
            sys.exit("the rewritten JSON does not fit the JSON area")
        for offset in (0, size):
            disk.seek(offset)
            header = bytearray(disk.read(size))
            header[JSON_OFFSET:] = text + b"\0" * (size - JSON_OFFSET - len(text))
            header[CSUM_OFFSET:CSUM_OFFSET + CSUM_LENGTH] = b"\0" * CSUM_LENGTH
            digest = hashlib.sha256(header).digest()
            header[CSUM_OFFSET:CSUM_OFFSET + CSUM_LENGTH] = digest + b"\0" * (CSUM_LENGTH - len(digest))
            disk.seek(offset)
            disk.write(header)
    print(f"{path}: {mode} written to both header copies with valid checksums")


if __name__ == "__main__":
    main()
