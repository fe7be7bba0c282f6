#!/bin/sh
# Makes a local docker.io/library/debian:bookworm-slim with debootstrap when
# podman has no such image, for hosts that reach a Debian mirror but no
# container registry. The mirror is the one apt is configured with (override
# with DEBIAN_MIRROR). Docs, man pages and locales are left out as in the
# official slim image. Needs root, debootstrap and podman.
#   usage: deploy/container/make-base.sh [--force]
set -eu
IMAGE=docker.io/library/debian:bookworm-slim
if [ "${1:-}" != "--force" ] && podman image exists "$IMAGE"; then
  # An image made by an older version of this script may lack PATH.
  if podman image inspect --format '{{.Config.Env}}' "$IMAGE" | grep -q 'PATH='; then
    echo "make-base: $IMAGE present"
    exit 0
  fi
fi

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then
  # First non-security Debian URI of apt's sources (deb822 or one-line form).
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
           awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' | grep -v security | head -n1)
fi
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
           awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }' |
           grep -v security | head -n1)
fi
[ -n "$mirror" ] || { echo "make-base: no Debian mirror in apt's sources (set DEBIAN_MIRROR)" >&2; exit 1; }

root=$(mktemp -d /var/tmp/grantd-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "make-base: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
  { tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
CFG
printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$root/etc/apt/sources.list"
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/usr/share/locale/"* \
       "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb \
       "$root/var/log/"*.log "$root/tmp/"* 2>/dev/null || true

tar -C "$root" --numeric-owner -c . |
  podman import --quiet --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "make-base: $IMAGE made ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"
