#!/usr/bin/env python3
"""Writes vhsm-init's configuration for an initramfs: the template (initramfs/init*.json) with the operator's
recovery PUBLIC key added as "recovery_key" (taken from the private key file with openssl; the private key
never enters the image). Extra KEY=JSON arguments set top-level keys (tests: seal=\"image\").

Usage: guest-config.py TEMPLATE RECOVERY_PRIVATE_KEY.pem [KEY=JSON ...] > init.json
"""
import json
import subprocess
import sys

if len(sys.argv) < 3:
    sys.exit(__doc__)
with open(sys.argv[1]) as f:
    config = json.load(f)
public = subprocess.run(["openssl", "pkey", "-in", sys.argv[2], "-pubout"], check=True, capture_output=True,
                        text=True).stdout
config["recovery_key"] = public
for assignment in sys.argv[3:]:
    key, _, value = assignment.partition("=")
    config[key] = json.loads(value)
json.dump(config, sys.stdout, indent=2)
sys.stdout.write("\n")
