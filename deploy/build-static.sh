#!/bin/sh
# Builds the static pop2imap binary that the container image ships, with no
# cgo (so it needs no libc) and no local paths in it. The Dockerfile and CI
# both run this script, so they build the same way.
#
# Usage: deploy/build-static.sh OUTPUT
set -eu
out=${1:?usage: deploy/build-static.sh OUTPUT}
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out" ./cmd/pop2imap
# A static binary: built without cgo, and with no ELF interpreter.
go version -m "$out" | grep -q 'CGO_ENABLED=0' || { echo "build-static: $out was built with cgo" >&2; exit 1; }
if od -A n -c -N 4096 "$out" | tr -d ' \n' | grep -q 'ld-linux'; then
	echo "build-static: $out needs a dynamic loader" >&2
	exit 1
fi
