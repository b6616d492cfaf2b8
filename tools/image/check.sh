#!/usr/bin/env bash
# Builds the mip container image without a daemon and checks it: buildah (vfs storage, chroot
# isolation, in a temporary root) builds tools/image/Containerfile.prebuilt from BINARY and the
# shared libraries it links; the image is exported as an OCI layout and unpacked with umoci; then
# the entrypoint must be exec form (no shell), the user 65532, the rootfs hold no shell, and
# `mip --version` must run inside the unpacked rootfs (chroot, as uid 65532, with the image's
# environment). The image config must carry the OCI labels (org.opencontainers.image.*) of the
# release Containerfile, none empty.
#
#   bash tools/image/check.sh target/debug/mip      # prints `mip 0.1.0 (commit …)` on stdout
#   bash tools/image/check.sh target/debug/mip git REPO BASE
#       the `-git` variant (target mip-git: the host's git and its libraries added, still no
#       shell); REPO (a Git work tree holding mip.yaml, owned by us, not by 65532) is copied into
#       the rootfs and `mip plan --base BASE --output markdown` runs there: its output on stdout.
#
# buildah, umoci and jq are Debian packages (`bash tools/ensure-deb.sh buildah buildah`, …).
set -euo pipefail
binary=${1:?usage: check.sh BINARY [git REPO BASE]}
variant=${2:-}
[[ -z $variant || $variant == git ]] || { printf 'check.sh: unknown variant %s\n' "$variant" >&2; exit 2; }
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
# stage DEST FILE: FILE as DEST/FILE, with the loader and libraries it links.
stage() {
  install -D -m 0755 "$2" "$1$3"
  ldd "$2" 2>/dev/null | grep -o '/[^ ]*' | sort -u | while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$1$lib"
  done
}
stage "$ctx/rootfs" "$binary" /usr/local/bin/mip
mkdir -p "$ctx/rootfs-git"
target=mip
if [[ $variant == git ]]; then
  stage "$ctx/rootfs-git" "$(command -v git)" /usr/bin/git
  target=mip-git
fi
cp "$here/Containerfile.prebuilt" "$ctx/Containerfile"
# The label values the release passes (examples/github-actions/release.yml).
version=$("$binary" --version | cut -d' ' -f2)
revision=$(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)
label_args=(--build-arg "MIP_VERSION=v$version" --build-arg "MIP_REVISION=$revision"
  --build-arg "MIP_CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" --build-arg "MIP_SOURCE=https://example.invalid/mip")

start=$(date +%s%N)
buildah "${storage[@]}" bud --isolation chroot --quiet --target "$target" "${label_args[@]}" \
  -f "$ctx/Containerfile" -t localhost/mip:check "$ctx" >/dev/null
buildah "${storage[@]}" push --quiet localhost/mip:check "oci:$work/oci:check" >/dev/null
umoci unpack --rootless --image "$work/oci:check" "$work/bundle" >/dev/null
end=$(date +%s%N)
log "image built, exported and unpacked in $(( (end - start) / 1000000 )) ms ($(du -sh "$work/oci" | cut -f1) OCI layout)"

# The labels, from the image config of the OCI layout.
blob() { echo "$work/oci/blobs/${1/://}"; }
manifest=$(jq -r '.manifests[0].digest' "$work/oci/index.json")
labels=$(jq -c '.config.Labels // {}' "$(blob "$(jq -r '.config.digest' "$(blob "$manifest")")")")
for key in source version revision created licenses title description; do
  value=$(jq -r --arg k "org.opencontainers.image.$key" '.[$k] // ""' <<<"$labels")
  [[ -n $value ]] || { log "the image has no label org.opencontainers.image.$key: $labels"; exit 1; }
done
log "labels org.opencontainers.image.{source,version,revision,created,licenses,title,description}: version $(jq -r '."org.opencontainers.image.version"' <<<"$labels"), licenses $(jq -r '."org.opencontainers.image.licenses"' <<<"$labels")"

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
# The image's environment (ENV), as a runtime would set it.
mapfile -t image_env < <(jq -r '.process.env[]' "$config")
run() { env -i "${image_env[@]}" chroot --userspec=65532:65532 "$rootfs" "$@"; }
if [[ $variant == git ]]; then
  repo=${3:?usage: check.sh BINARY git REPO BASE}
  base=${4:?usage: check.sh BINARY git REPO BASE}
  [[ -x $rootfs/usr/bin/git ]] || { log "the git variant has no /usr/bin/git"; exit 1; }
  cp -a "$repo" "$rootfs/tmp/repo"
  # A runtime gives every container /dev/null (the OCI runtime spec's default devices); git
  # opens it at start. The chroot gets one the same way.
  mkdir -p "$rootfs/dev"
  mknod -m 0666 "$rootfs/dev/null" c 1 3 2>/dev/null || { : >"$rootfs/dev/null"; chmod 0666 "$rootfs/dev/null"; }
  log "git variant: $(run /usr/bin/git --version), mip plan --base $base in /tmp/repo"
  run /usr/local/bin/mip plan --inventory /tmp/repo/mip.yaml --base "$base" --output markdown
else
  run /usr/local/bin/mip --version
fi
