#!/usr/bin/env bash
# One-command setup for peaknet_gui.
#
#   bash scripts/bootstrap.sh gui  [peaknet-gui args]   set up, then open the GUI (demo run by default)
#   bash scripts/bootstrap.sh test [pytest args]        set up, then run the whole test suite headless
#   bash scripts/bootstrap.sh setup                     set up only
#
# Creates ./.venv (Python >= 3.10), installs torch (CPU build unless an NVIDIA GPU is present,
# so CPU machines never download CUDA wheels), then the package in editable mode with its
# test, GUI, cluster (Ray) and live-stream (ZeroMQ) dependencies. Re-running it is cheap: finished steps are skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
mode="${1:-setup}"; shift || true
venv="${PEAKNET_VENV:-$here/.venv}"
torch_version="2.13.0"

say() { printf '\033[1m[peaknet setup]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
apt_install() {
    command -v apt-get >/dev/null || return 1
    say "installing system packages: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null \
      || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null; }
}

# --- Python >= 3.10 -----------------------------------------------------------------------
py="${PYTHON:-}"
if [ -z "$py" ]; then
    for cand in python3 python3.13 python3.12 python3.11 python3.10; do
        if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
            py="$cand"; break
        fi
    done
fi
[ -n "$py" ] || { say "Python >= 3.10 is required (apt-get install python3)"; exit 1; }

# --- virtual environment ------------------------------------------------------------------
if [ ! -x "$venv/bin/python" ]; then
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
        pyver=$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
        apt_install "python${pyver}-venv" || apt_install python3-venv \
          || { say "python venv support is missing: run 'sudo apt-get install python3-venv'"; exit 1; }
    fi
    say "creating $venv"
    "$py" -m venv "$venv"
fi
vpy="$venv/bin/python"
pip() { "$vpy" -m pip --disable-pip-version-check -q "$@"; }

# --- torch: CPU build unless CUDA is there -------------------------------------------------
if ! "$vpy" -c 'import torch' 2>/dev/null; then
    if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
        say "NVIDIA GPU found: installing torch ${torch_version} (CUDA build) and cupy"
        pip install "torch==${torch_version}"
        pip install "cupy-cuda12x>=13" || say "cupy could not be installed; GPU post-processing falls back to torch"
    else
        say "no NVIDIA GPU: installing the CPU build of torch ${torch_version}"
        # A local +cpu wheel (find-links) or the PyTorch CPU index wins over PyPI's CUDA build
        # because torch==X+cpu sorts above torch==X.
        pip install "torch==${torch_version}" --extra-index-url https://download.pytorch.org/whl/cpu
    fi
fi

# --- the application ------------------------------------------------------------------------
stamp="$venv/.peaknet-installed"
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing peaknet_gui and its dependencies"
    pip install -e ".[test,cluster,streams,streams-test]"
    touch "$stamp"
fi

# --- system libraries Qt needs for a real window (not for offscreen tests) ----------------------
need_qt_libs() {
    command -v ldconfig >/dev/null || return 1
    local missing=()
    for lib in libxkbcommon-x11.so.0 libxcb-icccm.so.4 libxcb-image.so.0 libxcb-keysyms.so.1 \
               libxcb-randr.so.0 libxcb-render-util.so.0 libxcb-xinerama.so.0 libxcb-shape.so.0 \
               libxcb-xfixes.so.0 libEGL.so.1 libGL.so.1 libfontconfig.so.1 libdbus-1.so.3; do
        ldconfig -p | grep -q "$lib" || missing+=("$lib")
    done
    [ ${#missing[@]} -gt 0 ]
}

case "$mode" in
    setup)
        say "done: .venv is ready ($("$vpy" -c 'import torch; print("torch", torch.__version__)'))" ;;
    gui)
        if [ -z "${QT_QPA_PLATFORM:-}" ] && need_qt_libs; then
            apt_install libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
                libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-xfixes0 libegl1 libgl1 \
                libfontconfig1 libdbus-1-3 \
              || say "Qt may miss system libraries: sudo apt-get install libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-shape0 libxcb-xfixes0 libegl1 libgl1"
        fi
        exec "$venv/bin/peaknet-gui" "$@" ;;
    test)
        export QT_QPA_PLATFORM=offscreen
        exec "$vpy" -m pytest "$@" ;;
    *)
        say "unknown mode '$mode' (use: setup, gui, test)"; exit 2 ;;
esac
