#!/usr/bin/env bash
# Builds the rbt image (Dockerfile: FROM scratch, the static rbt at /usr/bin/bpftrace and
# LICENSE). With a working docker or podman it runs `build`; otherwise it writes the same
# image with tar and sha256sum only, as an OCI image layout archive that `docker load`,
# `podman load` and `skopeo copy oci-archive:...` take:
#   scripts/image.sh [OUT.tar]        (default target/image/rbt-image.tar)
# PROFILE=debug builds the debug binary instead of release (for a quick check).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${PROFILE:-release}
out=${1:-target/image/rbt-image.tar}
target=x86_64-unknown-linux-musl
flag=$([[ $profile == release ]] && echo --release || true)
cargo build $flag --target "$target"
bin=target/$target/$profile/rbt
if file "$bin" 2>/dev/null | grep -q dynamically; then
  echo "image: $bin is not static" >&2
  exit 1
fi

for tool in docker podman; do
  if command -v "$tool" >/dev/null && "$tool" info >/dev/null 2>&1; then
    "$tool" build --build-arg PROFILE="$profile" --target rbt -t rbt:latest .
    "$tool" save -o "$out" rbt:latest
    echo "image: built rbt:latest with $tool, saved to $out"
    exit 0
  fi
done

# No container engine: the image by hand. One uncompressed layer (its digest is then its
# diff_id), files owned by root, timestamps fixed so the same binary gives the same image.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/usr/bin" "$work/oci/blobs/sha256"
install -m 0755 "$bin" "$work/root/usr/bin/bpftrace"
install -m 0644 LICENSE "$work/root/LICENSE"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
  -C "$work/root" -cf "$work/layer.tar" LICENSE usr
blob() { # file -> prints its digest, stores it under blobs/
  local d
  d=$(sha256sum "$1" | cut -d' ' -f1)
  cp "$1" "$work/oci/blobs/sha256/$d"
  echo "$d"
}
size() { stat -c %s "$1"; }
layer=$(blob "$work/layer.tar")
cat >"$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/usr/bin/bpftrace"]},"rootfs":{"type":"layers","diff_ids":["sha256:$layer"]}}
JSON
config=$(blob "$work/config.json")
cat >"$work/manifest.json" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$(size "$work/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:$layer","size":$(size "$work/layer.tar")}]}
JSON
manifest=$(blob "$work/manifest.json")
cat >"$work/oci/index.json" <<JSON
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$(size "$work/manifest.json"),"annotations":{"io.containerd.image.name":"docker.io/library/rbt:latest","org.opencontainers.image.ref.name":"latest"}}]}
JSON
echo '{"imageLayoutVersion":"1.0.0"}' >"$work/oci/oci-layout"
# docker load before 25 reads this file instead of index.json.
cat >"$work/oci/manifest.json" <<JSON
[{"Config":"blobs/sha256/$config","RepoTags":["rbt:latest"],"Layers":["blobs/sha256/$layer"]}]
JSON
mkdir -p "$(dirname "$out")"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/oci" -cf "$out" oci-layout index.json manifest.json blobs
echo "image: no docker/podman daemon; wrote the OCI image archive $out (docker load -i / podman load -i)"
