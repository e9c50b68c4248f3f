# rbt as a drop-in bpftrace image. Build the static binary first (scripts/image.sh does
# both steps, and without docker/podman writes the same image as an OCI archive):
#   cargo build --release --target x86_64-unknown-linux-musl
#   docker build -t rbt .                        # FROM scratch: /usr/bin/bpftrace + LICENSE
#   docker build -t rbt-kubectl-trace --target kubectl-trace .
ARG PROFILE=release

# The whole image: one static executable (no libc, no shell: nothing else to scan) and
# its license. Run it with the host's /sys (BTF, tracefs) and CAP_BPF+CAP_PERFMON or
# privileged; it ends on SIGTERM or SIGINT by printing its maps, exit status 0.
FROM scratch AS rbt
ARG PROFILE
COPY target/x86_64-unknown-linux-musl/${PROFILE}/rbt /usr/bin/bpftrace
COPY LICENSE /LICENSE
ENTRYPOINT ["/usr/bin/bpftrace"]

# For `kubectl trace run --imagename`: kubectl-trace's Job runs /bin/timeout and
# /bin/trace-runner (which execs /usr/bin/bpftrace) and a bash preStop hook
# `kill -SIGINT $(pidof bpftrace)`, so it needs its runner image; this swaps the
# bpftrace in it (and the libraries it links) for rbt.
FROM quay.io/iovisor/kubectl-trace-bpftrace:latest AS kubectl-trace
COPY --from=rbt /usr/bin/bpftrace /usr/bin/bpftrace
COPY --from=rbt /LICENSE /usr/share/doc/rbt/LICENSE

FROM rbt
