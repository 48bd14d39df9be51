#!/usr/bin/env python3
"""Runs the README's exit-code tables: every row's command, checking its exit code and the start of its message.

The tables are the single source: each markdown table in README.md whose header is
`| Command | Exit | Message starts with |` is parsed, and each row's command (the backticked text of the first cell)
is run from TESTDATA/snp, as the README's tour does after its `cd`. `vhsm` and `vhsmd` at the start of a command are
the binaries named by $VHSM and $VHSMD. The message (the backticked text of the third cell) must start a line of the
command's stderr, or of its stdout for a verdict printed there (`report verify`).

Usage: VHSM=.build/debug/vhsm VHSMD=.build/debug/vhsmd TESTDATA=../shared/testdata scripts/readme-exit-test.py [README]
"""

import os
import re
import shlex
import subprocess
import sys

HEADER = ["Command", "Exit", "Message starts with"]


def cells(line):
    """The cells of a markdown table row, stripped (a `\\|` is a literal bar)."""
    text = line.strip()
    if not (text.startswith("|") and text.endswith("|")):
        return None
    parts = re.split(r"(?<!\\)\|", text[1:-1])
    return [part.strip().replace("\\|", "|") for part in parts]


def code(cell):
    """The text of a cell's one backticked span."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    if not match:
        raise ValueError(f"expected one `backticked` value, got {cell!r}")
    return match.group(1)


def rows(readme):
    """(line number, command, exit code, message) for every row of every exit-code table."""
    lines = open(readme, encoding="utf-8").read().split("\n")
    found = []
    index = 0
    while index < len(lines):
        if cells(lines[index]) == HEADER:
            separator = cells(lines[index + 1]) if index + 1 < len(lines) else None
            if not separator or not all(re.fullmatch(r":?-+:?", cell) for cell in separator):
                raise ValueError(f"{readme}:{index + 1}: an exit-code table without its separator row")
            index += 2
            while index < len(lines) and cells(lines[index]) is not None:
                row = cells(lines[index])
                if len(row) != 3:
                    raise ValueError(f"{readme}:{index + 1}: a row needs 3 cells, has {len(row)}")
                found.append((index + 1, code(row[0]), int(code(row[1])), code(row[2])))
                index += 1
        else:
            index += 1
    return found


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    readme = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "README.md")
    # Absolute: the commands run in TESTDATA/snp.
    programs = {name: os.path.abspath(os.environ[variable]) if os.environ.get(variable) else None
                for name, variable in (("vhsm", "VHSM"), ("vhsmd", "VHSMD"))}
    testdata = os.environ.get("TESTDATA") or os.path.join(here, "..", "..", "shared", "testdata")
    directory = os.path.join(testdata, "snp")
    if not os.path.isfile(os.path.join(directory, "vectors.json")):
        print(f"readme-exit-test: {directory}/vectors.json is missing: the tests need ../shared/testdata", file=sys.stderr)
        return 1
    table = rows(readme)
    if len(table) < 10:
        print(f"readme-exit-test: found {len(table)} rows in {readme}'s exit-code tables, expected at least 10",
              file=sys.stderr)
        return 1
    codes = {expected for _, _, expected, _ in table}
    if not {1, 2, 3} <= codes:
        print(f"readme-exit-test: the tables cover exit codes {sorted(codes)}, not each of 1, 2 and 3",
              file=sys.stderr)
        return 1
    failed = 0
    for number, command, expected, message in table:
        words = shlex.split(command)
        program = programs.get(words[0])
        if not program:
            print(f"FAIL README.md:{number}: '{words[0]}' is neither vhsm nor vhsmd, or ${words[0].upper()} is unset")
            failed += 1
            continue
        try:
            result = subprocess.run([program] + words[1:], cwd=directory, stdin=subprocess.DEVNULL,
                                    capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            print(f"FAIL README.md:{number}: {command}: no exit within 300 s")
            failed += 1
            continue
        said = result.stderr.splitlines() + result.stdout.splitlines()
        problems = []
        if result.returncode != expected:
            problems.append(f"exit {result.returncode}, the README says {expected}")
        if not any(line.startswith(message) for line in said):
            problems.append(f"no line starts with {message!r}")
        if problems:
            failed += 1
            print(f"FAIL README.md:{number}: {command}: " + "; ".join(problems))
            for line in (result.stderr + result.stdout).splitlines()[:10]:
                print(f"    {line}")
    print(f"readme-exit-test: {len(table) - failed} of {len(table)} rows of the README's exit-code tables hold")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
