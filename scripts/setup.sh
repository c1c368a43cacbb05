#!/usr/bin/env bash
# Installs what v2m needs to build, run and test, and nothing that is already there.
# Idempotent: a second run installs nothing and prints only what it checked.
#
#   scripts/setup.sh            system packages for building, running and testing
#
# System packages (Debian/Ubuntu names):
#   pkg-config libasound2-dev   cpal's ALSA backend (capture)
#   espeak-ng sox               synthetic speech and audio conversion for fixtures
#   ffmpeg                      files symphonia does not decode (Opus, video); encoding fixtures
#   pocketsphinx-testdata       real recorded English speech with reference transcripts
#   xvfb xclip                  an X server and clipboard tool for the --clipboard test
#   time util-linux             /usr/bin/time -v (bench-files.sh's peak RSS); prlimit and
#                               setpriv (the descriptor-limit and other-user tests)
#   pulseaudio libasound2-plugins
#                               a private sound server and ALSA's pulse plugin: the microphone
#                               that the device-loss test pulls out (not installed where
#                               pipewire-pulse is, which it would replace)
set -euo pipefail

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        log "need root to run: $*  (no sudo found); run it as root and try again"
        exit 1
    fi
}

apt_packages=(pkg-config libasound2-dev espeak-ng sox ffmpeg pocketsphinx-testdata xvfb xclip libasound2-plugins time util-linux)
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# pulseaudio conflicts with pipewire-pulse: never swap a desktop's sound server for a test.
if installed pipewire-pulse; then
    log "pipewire-pulse is installed: not installing pulseaudio (rt's device_loss test needs it; run that test in a container)"
else
    apt_packages+=(pulseaudio)
fi

install_apt() {
    local missing=()
    for p in "${apt_packages[@]}"; do
        installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "system packages present: ${apt_packages[*]}"
        return
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        log "missing packages ${missing[*]} and no apt-get: install their equivalents by hand"
        exit 1
    fi
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

check_rust() {
    if ! command -v cargo >/dev/null 2>&1; then
        log "cargo not found: install Rust (https://rustup.rs) and run this again"
        exit 1
    fi
}

check_rust
install_apt
