#!/usr/bin/env bash
# Builds the mip container image without a daemon and checks it: buildah (vfs storage, chroot
# isolation, in a temporary root) builds tools/image/Containerfile.prebuilt from BINARY and the
# shared libraries it links; the image is exported as an OCI layout and unpacked with umoci; then
# the entrypoint must be exec form (no shell), the user 65532, the rootfs hold no shell, and
# `mip --version` must run inside the unpacked rootfs (chroot, as uid 65532).
#
#   bash tools/image/check.sh target/debug/mip      # prints `mip 0.1.0 (commit …)` on stdout
#
# buildah, umoci and jq are Debian packages (`bash tools/ensure-deb.sh buildah buildah`, …).
set -euo pipefail
binary=${1:?usage: check.sh BINARY}
here=$(cd "$(dirname "$0")" && pwd)
log() { printf 'check.sh: %s\n' "$*" >&2; }
for tool in buildah umoci jq; do
  command -v "$tool" >/dev/null || { log "$tool is missing: bash tools/ensure-deb.sh $tool $tool"; exit 1; }
done

work=$(mktemp -d)
storage=(--storage-driver vfs --root "$work/storage" --runroot "$work/run")
cleanup() { buildah "${storage[@]}" rm --all >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

# The build context: the binary and, for a dynamically linked build, its loader and libraries.
ctx=$work/context
install -D -m 0755 "$binary" "$ctx/rootfs/usr/local/bin/mip"
ldd "$binary" 2>/dev/null | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  install -D -m 0755 "$(readlink -f "$lib")" "$ctx/rootfs$lib"
done
cp "$here/Containerfile.prebuilt" "$ctx/Containerfile"

start=$(date +%s%N)
buildah "${storage[@]}" bud --isolation chroot --quiet -f "$ctx/Containerfile" -t localhost/mip:check "$ctx" >/dev/null
buildah "${storage[@]}" push --quiet localhost/mip:check "oci:$work/oci:check" >/dev/null
umoci unpack --rootless --image "$work/oci:check" "$work/bundle" >/dev/null
end=$(date +%s%N)
log "image built, exported and unpacked in $(( (end - start) / 1000000 )) ms ($(du -sh "$work/oci" | cut -f1) OCI layout)"

config=$work/bundle/config.json
args=$(jq -c '.process.args' "$config")
uid=$(jq -r '.process.user.uid' "$config")
[[ $args == '["/usr/local/bin/mip","--help"]' ]] || { log "entrypoint+cmd is $args, expected exec form"; exit 1; }
[[ $uid == 65532 ]] || { log "user is $uid, expected 65532"; exit 1; }
rootfs=$work/bundle/rootfs
for sh in bin/sh bin/bash usr/bin/sh; do
  [[ ! -e $rootfs/$sh ]] || { log "the image holds a shell: /$sh"; exit 1; }
done
log "entrypoint exec form $args, user $uid, no shell"
# The rootless unpack leaves the files owned by us; the image is run as 65532 like a pod would.
chmod -R a+rX "$rootfs"
chroot --userspec=65532:65532 "$rootfs" /usr/local/bin/mip --version
