#!/bin/sh
# A stand-in for rbt in the golden suite's self-check (RBT_GOLDEN_STANDIN=1):
# runs the reference itself, whatever script it is given, so every comparison
# must pass. Proves the harness (concurrent runs, collection, comparison)
# without depending on rbt.
exec bpftrace /bin/tcpaccept.bt
