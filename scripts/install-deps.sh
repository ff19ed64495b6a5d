#!/bin/sh
# Installs every Debian package Wharf needs to build, run and test.
# Idempotent: runs apt-get only when something is missing, and
# `apt-get update` only then.  Packages named as arguments are added to
# the list (fuzz/run.sh adds clang's).
set -eu

PKGS="gcc make meson ninja-build pkg-config
libmicrohttpd-dev libjansson-dev libsqlite3-dev libssl-dev libcrypt-dev
libarchive-dev libarchive-tools zlib1g-dev libbrotli-dev
libcurl4-openssl-dev libcmocka-dev python3 python3-pytest python3-requests
ca-certificates media-types bubblewrap $*"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: run as root, or: sudo apt-get install$missing" >&2
	exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
