#!/bin/sh
# Install Azurite (Microsoft's Azure Storage emulator, npm package `azurite`) into .cache/azurite, where the
# emulator finds it (dpemulator/azurite.py). 3.35.0 is the newest release whose package accepts Node 20 (3.36 needs
# Node 21+, 3.37 Node 22+). Idempotent: exits at once when that version is there. Needs node and npm on PATH;
# without them it says what to install and exits 1.
set -eu
VERSION=3.35.0
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${AZURITE_DIR:-$root/.cache/azurite}
bin=$dest/node_modules/.bin/azurite-blob
if [ -x "$bin" ] && [ "$(cat "$dest/.version" 2>/dev/null)" = "$VERSION" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    echo "ensure-azurite: node and npm are needed (Debian: apt-get install nodejs npm)" >&2
    exit 1
fi
mkdir -p "$dest"
echo "ensure-azurite: npm install azurite@$VERSION into $dest"
npm install --prefix "$dest" --no-audit --no-fund --omit=dev --loglevel=error "azurite@$VERSION" >/dev/null
[ -x "$bin" ] || { echo "ensure-azurite: $bin missing after npm install" >&2; exit 1; }
echo "$VERSION" > "$dest/.version"
