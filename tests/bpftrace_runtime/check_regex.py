#!/usr/bin/env python3
"""Checks tests/bpftrace_runtime.rs's EXPECT matching against Python's `re`.

Run the suite with RBT_CONFORMANCE_DUMP=DIR first, then: check_regex.py DIR.
Every (EXPECT, output) pair is matched by Python with and without re.M, as
upstream's engine does, and by the Rust runner (RBT_CONFORMANCE_REGEX_CHECK);
any difference is printed. Development aid only; the suite does not need Python.
"""
import os, re, subprocess, sys

dump = sys.argv[1]
rows = []
with open(os.path.join(dump, "index.tsv")) as f:
    for line in f:
        tracer, _passed, _exit, path, expect = line.rstrip("\n").split("\t", 4)
        rows.append((expect, path))
listfile = os.path.join(dump, "regex-check.tsv")
with open(listfile, "w") as f:
    for expect, path in rows:
        f.write(f"{expect}\t{path}\n")
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
env = dict(os.environ, RBT_CONFORMANCE_REGEX_CHECK=listfile)
out = subprocess.run(["cargo", "test", "-q", "--test", "bpftrace_runtime"], cwd=root,
                     env=env, capture_output=True, text=True, check=True).stdout.split("\n")
bad = 0
for (expect, path), got in zip(rows, out):
    text = open(path, errors="replace").read()
    def py(flags):
        try:
            return "1" if re.search(expect, text, flags) else "0"
        except re.error:
            return "E"
    want = f"{py(re.M)}\t{py(0)}"
    if got != want:
        bad += 1
        print(f"DIFF python={want!r} rust={got!r} expect={expect!r} output={path}")
print(f"{len(rows)} pairs, {bad} differ")
sys.exit(1 if bad else 0)
