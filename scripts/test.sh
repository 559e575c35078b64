#!/usr/bin/env bash
# The whole test suite in one command. Arguments are passed on to pytest.
#
# What it does to the machine:
#   - Debian packages the tests use (sox, libsox-fmt-all, flite, openssl, pulseaudio,
#     pulseaudio-utils, libasound2-plugins, libportaudio2, and chromium for the browser
#     example's test): checked; any missing are named,
#     with the apt-get command that installs them, and the run stops. It installs them
#     itself (apt-get, with sudo when not root) only when asked: NSAUDIO_INSTALL_PACKAGES=1,
#     which CI sets (.ci/run) on its fresh machine.
#   - A virtualenv, .venv (or $NSAUDIO_VENV), with nsaudio and all its extras installed in
#     it by pip ('.[all,vad-reference]': every extra, and torch (CPU) with silero-vad, the
#     reference the Silero detector is tested against). NSAUDIO_NO_INSTALL=1 uses the
#     virtualenv as it is and installs nothing at all.
#   - A private PulseAudio daemon for the device tests (scripts/pulse.sh), with its own
#     socket and files under $TMPDIR, stopped when the run ends. A desktop's own PulseAudio
#     (or PipeWire) is not touched: its default sink and source, modules and daemons stay as
#     they were.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test.sh: $*" >&2; }

APT_PACKAGES=(sox libsox-fmt-all flite openssl pulseaudio pulseaudio-utils libasound2-plugins libportaudio2 chromium)
if [ "${NSAUDIO_NO_INSTALL:-}" != 1 ]; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if ((${#missing[@]})); then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo "
        install="${SUDO}apt-get install ${missing[*]}"
        if [ "${NSAUDIO_INSTALL_PACKAGES:-}" != 1 ]; then
            say "missing Debian packages: ${missing[*]}"
            say "install them with:  $install"
            say "(or run NSAUDIO_INSTALL_PACKAGES=1 bash scripts/test.sh to have this script do it)"
            exit 1
        fi
        say "installing ${missing[*]}"
        ${SUDO}apt-get update -qq
        DEBIAN_FRONTEND=noninteractive ${SUDO}apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

VENV="${NSAUDIO_VENV:-.venv}"
if [ "${NSAUDIO_NO_INSTALL:-}" != 1 ]; then
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    # vad-reference: torch (CPU) and silero-vad, the reference the Silero detector is tested against
    "$VENV/bin/pip" install -q --disable-pip-version-check '.[all,vad-reference]'
fi
[ -x "$VENV/bin/python" ] || { say "no virtualenv at $VENV"; exit 1; }

# A real capture path without sound hardware: a private PulseAudio with a null sink whose
# monitor is the default source, stopped at the end if this run started it. CI fails rather
# than quietly skipping the device tests.
stop_pulse=""
cleanup() {
    if [ -n "$stop_pulse" ]; then
        bash scripts/pulse.sh --kill "$stop_pulse" 2>/dev/null || true
    fi
}
trap cleanup EXIT
if pulse_env=$(bash scripts/pulse.sh); then
    eval "$pulse_env"
    if grep -qx '# started' <<<"$pulse_env"; then
        stop_pulse="$NSAUDIO_PULSE_DIR"
    fi
    export NSAUDIO_REQUIRE_DEVICE=1
else
    say "PulseAudio did not start: device tests will be skipped"
fi

# The browser example's test drives the chromium installed above: CI fails without it.
export NSAUDIO_REQUIRE_BROWSER=1

# Not exec: the trap above must stop the daemon once pytest is done. Ctrl-C reaches pytest
# (the foreground process group); this shell waits for it, then cleans up.
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
exit "$status"
