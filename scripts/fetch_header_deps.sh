#!/usr/bin/env bash
# Unpacks CLI11 and nlohmann/json (header-only, with their CMake package files) into .deps/ of the repository,
# for a machine that cannot install them itself: the GPU machine has no network and no apt, so they are fetched
# here, on a Debian or Ubuntu machine that has both, and travel with the working tree (.deps/ is git-ignored).
# scripts/gpu_check.sh then configures with -DCMAKE_PREFIX_PATH=<repo>/.deps/usr, where CMake finds
# share/cmake/CLI11 and share/cmake/nlohmann_json; their package files locate the headers relative to
# themselves, so the folder works wherever the tree is copied.
#
#   scripts/fetch_header_deps.sh          # then: ls .deps/usr/include/CLI .deps/usr/include/nlohmann
set -euo pipefail

repository="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$repository/.deps"
packages=(libcli11-dev nlohmann-json3-dev)

for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "fetch_header_deps.sh: needs $tool (a Debian or Ubuntu machine)" >&2; exit 1; }
done

downloads="$(mktemp -d)"
chmod 755 "$downloads"  # apt downloads as its own user, _apt, where it can
trap 'rm -rf "$downloads"' EXIT
# apt-get download needs the package lists; an image with none (apt-get update never ran) is told so.
if ! (cd "$downloads" && apt-get download "${packages[@]}"); then
  echo "fetch_header_deps.sh: apt-get download ${packages[*]} failed; run apt-get update first" >&2
  exit 1
fi

rm -rf "$deps"
mkdir -p "$deps"
for package in "$downloads"/*.deb; do
  dpkg -x "$package" "$deps"
  echo "unpacked $(basename "$package")"
done

for header in usr/include/CLI/CLI.hpp usr/include/nlohmann/json.hpp; do
  [[ -f "$deps/$header" ]] || { echo "fetch_header_deps.sh: $deps/$header is missing after unpacking" >&2; exit 1; }
done
echo "header dependencies in $deps (configure with -DCMAKE_PREFIX_PATH=$deps/usr)"
