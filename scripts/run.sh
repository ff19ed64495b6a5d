#!/bin/sh
# `make run`: migrate, then serve on the embedded defaults (SQLite and a
# blob folder under ./data) until Ctrl-C.
set -eu
cd "$(dirname "$0")/.."
WHARF=./build/wharf

$WHARF migrate
cat <<'MSG'

First time here?  In another terminal:
  echo 'a-long-password' | ./build/wharf user add you@example.com
  ./build/wharf tenant add acme
  ./build/wharf member add acme you@example.com owner
  ./build/wharf token you@example.com      # prints an API token
README.md has the full tour.

MSG
exec $WHARF serve
