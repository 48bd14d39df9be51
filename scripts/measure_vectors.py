#!/usr/bin/env python3
"""Runs every vector of shared/testdata/measure/vectors.md through `vhsm measure` (the CLI, same flags as
sev-snp-measure) and compares stdout and exit status with what sev-snp-measure 0.0.13 printed.

Usage: measure_vectors.py VHSM TESTDATA_MEASURE
Inputs that are not shipped are looked up where `make deps` installs them (the Debian 12 kernel and ovmf
packages), and used only if their SHA-256 is the one the vectors were made with. Vectors whose inputs are absent are listed
as 'not run', never counted as passed. Vectors where vhsm refuses on purpose (firmware without SEV metadata)
must be refused.
"""
import hashlib
import os
import re
import shlex
import subprocess
import sys

# Files the vectors name but shared/ does not ship: where Debian 12 packages install them, and the SHA-256 the
# vectors were made with (a file of another version is not used).
INSTALLED = {
    "vmlinuz-6.1.0-57-amd64": ("/boot/vmlinuz-6.1.0-57-amd64",
                               "85667e6c72245133bd7e3e80bac7d16b26fda15c0a3c68faa4b713850ea526cd"),
    "OVMF.fd": ("/usr/share/ovmf/OVMF.fd", "7b456907dd0786d415999e801a1ac4637b8ed4d7cf5378cfc6edbe5e574dd773"),
    "OVMF_CODE.fd": ("/usr/share/OVMF/OVMF_CODE.fd",
                     "d9b568def24088c92f34b5479e0ed7e44d0a4d4cea8a0f5716719180bba48106"),
    "OVMF_CODE_4M.fd": ("/usr/share/OVMF/OVMF_CODE_4M.fd",
                        "b157d97b1f69729514feb7f201d2cbe4957f23ab77920e361fe9f822ba49ca4c"),
}
# Where the reference prints a value that means nothing, vhsm refuses with exit 1 (see `vhsm measure --help`).
DELIBERATE_REFUSALS = {
    "F05": "firmware without SEV metadata",
    "F10": "firmware without SEV metadata",
}


def main():
    vhsm, testdata = sys.argv[1], sys.argv[2]
    text = open(os.path.join(testdata, "vectors.md"), encoding="utf-8").read()
    rows = re.findall(r"^\| ([A-F]\d\d) \| `(sev-snp-measure [^`]*)` \| (\d) \| `([^`]*)` \|", text, re.M)
    available = {name: os.path.join(testdata, name) for name in os.listdir(testdata)}
    for name, (path, digest) in INSTALLED.items():
        if os.path.exists(path) and hashlib.sha256(open(path, "rb").read()).hexdigest() == digest:
            available[name] = path
    passed = failed = 0
    not_run = []
    for vector, command, code, expected in rows:
        args = shlex.split(command)[1:]
        missing = [a for a in args if re.search(r"\.(fd|bin)$|^vmlinuz", a) and a not in available]
        if missing:
            not_run.append(f"{vector} ({', '.join(sorted(set(missing)))})")
            continue
        args = [available.get(a, a) for a in args]
        result = subprocess.run([vhsm, "measure"] + args, capture_output=True, text=True)
        if vector in DELIBERATE_REFUSALS:
            ok = result.returncode == 1
            want = f"refusal ({DELIBERATE_REFUSALS[vector]})"
        elif code == "0":
            ok = result.returncode == 0 and result.stdout.strip() == expected
            want = expected
        else:
            ok = result.returncode != 0
            want = f"an error like the reference's: {expected}"
        if ok:
            passed += 1
        else:
            failed += 1
            got = result.stdout.strip() or result.stderr.strip()
            print(f"FAIL {vector}: exit {result.returncode}: {got}\n  expected {want}")
    if not_run:
        print("measure-vectors: not run (inputs not on this machine): " + "; ".join(not_run))
    print(f"measure-vectors: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed >= 40 else 1


if __name__ == "__main__":
    sys.exit(main())
