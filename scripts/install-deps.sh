#!/usr/bin/env bash
# Installs what building, running and testing CellSymphony needs on Debian/Ubuntu, skipping what
# is already there: system libraries (OpenSlide, Vulkan/Mesa lavapipe, X11/Wayland), Xvfb for
# window tests, and a Rust toolchain with rustfmt and clippy.
set -euo pipefail

packages=(
  build-essential pkg-config curl ca-certificates
  clang libclang-dev            # bindgen for openslide-sys
  libopenslide-dev              # OpenSlide 3.4 / 4.x
  libvulkan1 mesa-vulkan-drivers # Vulkan loader + lavapipe (software GPU for tests and GPU-less machines)
  libxkbcommon-dev libxkbcommon-x11-0 libwayland-dev libx11-dev libxcursor1 libxrandr2 libxi6 libgl1 libegl1
  xvfb xauth                    # headless windows for screenshots
  python3 python3-venv          # the cohort workflow's Snakemake (scripts/workflow-venv.sh)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "Installing system packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "Installing the Rust toolchain (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
if command -v rustup >/dev/null 2>&1; then
  for component in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
fi
