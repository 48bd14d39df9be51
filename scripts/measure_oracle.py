#!/usr/bin/env python3
"""Compares `vhsm measure` with sev-snp-measure 0.0.13 (the reference) on random inputs, in the same run.

Usage: measure_oracle.py VHSM TESTDATA_MEASURE [--cases N] [--seed S] [--kernel PATH]...

Random vCPU counts, CPU types, signatures and family/model/stepping, guest features, VMM types, modes,
command lines with odd characters, kernels and initrds of odd sizes (or none), the real 4 MiB AmdSev OVMF
and the upstream 4 KiB fixtures, with and without a precomputed OVMF hash. Every case must give the same
stdout and exit status class. Extra --kernel files (e.g. the installed Debian kernel) join the kernel pool.
Prints one line per mismatch and a closing 'measure-oracle: N passed, M failed' line.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile

CPU_TYPES = ["EPYC", "EPYC-v1", "EPYC-v2", "EPYC-v3", "EPYC-v4", "EPYC-IBPB", "EPYC-Rome", "EPYC-Rome-v1",
             "EPYC-Rome-v2", "EPYC-Rome-v3", "EPYC-Milan", "EPYC-Milan-v1", "EPYC-Milan-v2", "EPYC-Genoa",
             "EPYC-Genoa-v1", "EPYC-Turin"]
ODD = ["console=ttyS0", "loglevel=7", "quiet", "lang=bär", "µ", "root=PARTUUID=0b5d2c1e-01", "ro", "a=\"b c\"",
       "x='y'", "\\", "=", "--", "vhsm.seal=measurement", "ünïcødé", "☃", "init=/init", "a" * 300, " ", "\t"]


def reference_command():
    exe = shutil.which("sev-snp-measure")
    if exe:
        return [exe]
    return [sys.executable, "-m", "sevsnpmeasure.cli"]


def random_cmdline(rng):
    if rng.random() < 0.1:
        return ""
    return " ".join(rng.choice(ODD) for _ in range(rng.randint(1, 6)))


def case(rng, files):
    args = []
    mode = rng.choices(["snp", "seves", "sev", "snp:ovmf-hash"], weights=[70, 12, 10, 8])[0]
    ovmf_name = rng.choices(["full", "amdsev_suffix", "upstream_suffix"], weights=[25, 50, 25])[0]
    ovmf = files[ovmf_name]
    args += ["--mode", mode, "--ovmf", ovmf]
    if mode == "snp:ovmf-hash":
        return args
    vmm = rng.choices(["QEMU", "ec2", "gce"], weights=[70, 15, 15])[0]
    if vmm != "QEMU" or rng.random() < 0.2:
        args += ["--vmm-type", vmm]
    if mode != "sev":
        args += ["--vcpus", str(rng.choice([1, 2, 3, 4, 7, 8, 16, 33, 64, rng.randint(1, 128)]))]
        how = rng.choice(["type", "sig", "family"])
        if how == "type":
            args += ["--vcpu-type", rng.choice(CPU_TYPES)]
        elif how == "sig":
            sig = rng.choice([0xA00F11, 0xA10F11, 0xB00F20, 0x800F12, rng.randint(1, 0xFFFFFFF)])
            args += ["--vcpu-sig", rng.choice([hex(sig), str(sig)])]
        else:
            args += ["--vcpu-family", str(rng.choice([23, 25, 26, rng.randint(1, 40)])),
                     "--vcpu-model", str(rng.randint(0, 255)), "--vcpu-stepping", str(rng.randint(0, 15))]
        if rng.random() < 0.5:
            args += ["--guest-features", rng.choice(["0x1", "0x21", "0x0", hex(rng.randint(0, 0xFFFF))])]
    if rng.random() < 0.8:
        args += ["--kernel", rng.choice(files["kernels"])]
        if rng.random() < 0.7:
            args += ["--initrd", rng.choice(files["initrds"])]
        if rng.random() < 0.8:
            args += ["--append", random_cmdline(rng)]
    if mode == "snp" and ovmf_name != "upstream_suffix" and rng.random() < 0.3:
        args[args.index("--ovmf") + 1] = files["amdsev_suffix"]
        args += ["--snp-ovmf-hash", files["amdsev_hash"]]
    if mode == "snp" and ovmf_name == "upstream_suffix" and rng.random() < 0.3:
        args += ["--snp-ovmf-hash", files["upstream_hash"]]
    return args


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    return result.returncode, result.stdout.strip(), result.stderr.strip().splitlines()[-1:] or [""]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("vhsm")
    parser.add_argument("testdata")
    parser.add_argument("--cases", type=int, default=60)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--kernel", action="append", default=[])
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print(f"measure-oracle: seed {seed}, {options.cases} cases")
    work = tempfile.mkdtemp(prefix="vhsm-measure-")
    try:
        files = {
            "full": os.path.join(options.testdata, "OVMF.amdsev.fd"),
            "amdsev_suffix": os.path.join(options.testdata, "OVMF.amdsev.suffix4k.bin"),
            "upstream_suffix": os.path.join(options.testdata, "ovmf_AmdSev_suffix.bin"),
            "kernels": list(options.kernel),
            "initrds": [os.path.join(options.testdata, "empty.bin")],
        }
        for index in range(4):
            size = rng.choice([0, 1, 4095, 4096, 65537, rng.randint(1, 300000)])
            path = os.path.join(work, f"kernel{index}")
            with open(path, "wb") as handle:
                handle.write(rng.randbytes(size))
            files["kernels"].append(path)
            path = os.path.join(work, f"initrd{index}")
            with open(path, "wb") as handle:
                handle.write(rng.randbytes(rng.choice([1, 4219, rng.randint(1, 200000)])))
            files["initrds"].append(path)
        reference = reference_command()
        _, files["amdsev_hash"], _ = run(reference + ["--mode", "snp:ovmf-hash", "--ovmf", files["full"]])
        _, files["upstream_hash"], _ = run(reference + ["--mode", "snp:ovmf-hash", "--ovmf", files["upstream_suffix"]])
        passed = failed = 0
        for _ in range(options.cases):
            args = case(rng, files)
            ref_code, ref_out, ref_err = run(reference + args)
            our_code, our_out, our_err = run([options.vhsm, "measure"] + args)
            same = (ref_code == 0 and our_code == 0 and ref_out == our_out) or (ref_code != 0 and our_code != 0)
            if same:
                passed += 1
            else:
                failed += 1
                print(f"MISMATCH {' '.join(repr(a) if ' ' in a or not a else a for a in args)}")
                print(f"  reference exit {ref_code}: {ref_out or ref_err[0]}")
                print(f"  vhsm      exit {our_code}: {our_out or our_err[0]}")
        print(f"measure-oracle: {passed} passed, {failed} failed")
        return 0 if failed == 0 else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
