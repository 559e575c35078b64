#!/usr/bin/env bash
# Make a local stand-in for python:3.11-slim from Debian bookworm, for a machine with a
# Docker engine but no access to Docker Hub (docker build cannot pull the official image).
# It mimics what the Dockerfile relies on in the official image: `python` and `pip` first on
# PATH (/usr/local/bin), pip installing into a Python 3.11 whose site-packages it may write
# to (here a venv at /usr/local), apt-get and useradd. Nothing in the Dockerfile changes;
# with Docker Hub reachable, do not run this: the real image is what the Dockerfile means.
#
#   sudo deploy/standin-base.sh [ROOTFS_DIR]     (needs root, debootstrap, deb.debian.org)
#
# ROOTFS_DIR (default: a new temporary directory, removed afterwards) is reused if it already
# holds a bookworm tree with python3.11. The result is tagged python:3.11-slim locally.
# EXTRA_CA: CA certificate files (space-separated) the stand-in must trust besides Debian's,
# for a network behind a TLS-intercepting proxy (pip in the image then reaches PyPI); they
# go into the system store and /etc/pip.conf points pip at it (pip's own bundle lacks them).
set -euo pipefail

MIRROR=${MIRROR:-http://deb.debian.org/debian}
TAG=${TAG:-python:3.11-slim}
rootfs=${1:-}
cleanup=
if [[ -z $rootfs ]]; then
    rootfs=$(mktemp -d /tmp/standin-rootfs.XXXXXX)
    cleanup=$rootfs
fi
trap '[[ -n $cleanup ]] && rm -rf -- "$cleanup"' EXIT

if [[ ! -x $rootfs/usr/bin/python3.11 ]]; then
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" "$MIRROR"
fi
# The package cache is 45 MB of .debs nobody needs in an image.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
if [[ -n ${EXTRA_CA:-} ]]; then
    for ca in $EXTRA_CA; do
        cp -- "$ca" "$rootfs/usr/local/share/ca-certificates/$(basename "${ca%.*}").crt"
    done
    chroot "$rootfs" update-ca-certificates >/dev/null
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$rootfs/etc/pip.conf"
fi

stage="${TAG%%:*}-standin-stage:bookworm"
# The folder's own mode becomes the image's /: mktemp's 0700 would lock out uid 10001
# ("stat /bin/sh: permission denied"); python:3.11-slim's / is 0755.
chmod 755 "$rootfs"
tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$stage"

# The venv at /usr/local gives /usr/local/bin/python and pip, with a site-packages pip owns
# (Debian's own python3 refuses pip installs: PEP 668's EXTERNALLY-MANAGED).
docker build --network host -t "$TAG" - <<DOCKERFILE
FROM $stage
RUN python3 -m venv /usr/local && python -m pip --version
CMD ["python3"]
DOCKERFILE
docker image rm "$stage" >/dev/null
docker run --rm --network host "$TAG" sh -c 'command -v python && command -v pip && python --version'
