#!/usr/bin/env python3
"""Writes a guest configuration for an initramfs from its template, with the operator's PUBLIC key taken from the
private key file with openssl (the private key never enters the image):

  vhsm-init's (initramfs/init*.json): the key is added as "recovery_key" (the volume's recovery blob is sealed to it);
  vhsmd's (initramfs/vhsmd*.json, with --vhsmd): the same key is added as "operator_key" (sys/init and
  sys/generate-root/operator answer the root token only sealed to it; 'vhsm operator init --key KEY.pem' opens it).

Both files are in the initramfs, so both keys are measured. Extra KEY=JSON arguments set top-level keys
(tests: seal=\"image\").

Usage: guest-config.py [--vhsmd] TEMPLATE RECOVERY_PRIVATE_KEY.pem [KEY=JSON ...] > config.json
"""
import json
import subprocess
import sys

arguments = sys.argv[1:]
vhsmd = bool(arguments) and arguments[0] == "--vhsmd"
if vhsmd:
    arguments = arguments[1:]
if len(arguments) < 2:
    sys.exit(__doc__)
with open(arguments[0]) as f:
    config = json.load(f)
public = subprocess.run(["openssl", "pkey", "-in", arguments[1], "-pubout"], check=True, capture_output=True,
                        text=True).stdout
config["operator_key" if vhsmd else "recovery_key"] = public
for assignment in arguments[2:]:
    key, _, value = assignment.partition("=")
    config[key] = json.loads(value)
json.dump(config, sys.stdout, indent=2)
sys.stdout.write("\n")
