#!/usr/bin/env bash
# Installs what ladder needs (Debian/Ubuntu packages, only those missing), configures and builds into build/.
# Safe to run again: it installs nothing twice and rebuilds only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake libopenblas-dev libcli11-dev nlohmann-json3-dev libgtest-dev
          libbenchmark-dev doxygen mpich libmpich-dev python3 python3-matplotlib time)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_if_needed=""
  [ "$(id -u)" -eq 0 ] || sudo_if_needed="sudo"
  $sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_if_needed apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nvcc is optional: with it the CUDA code is compiled too (sm_80, sm_90), GPU present or not.
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then export PATH="/usr/local/cuda/bin:$PATH"; fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release ${LADDER_CMAKE_ARGS:-} >/dev/null
cmake --build build -j"$(nproc)"
echo "setup: built into build/"
