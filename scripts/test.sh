#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine, in one command: installs the system
# packages the tests use (sox, flite, PulseAudio, PortAudio, Chromium for the browser
# example's test), a virtualenv with nsaudio and its extras, then runs pytest. Arguments are
# passed on to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(sox libsox-fmt-all flite openssl pulseaudio pulseaudio-utils libasound2-plugins libportaudio2 chromium)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "test.sh: installing ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

VENV="${NSAUDIO_VENV:-.venv}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
# vad-reference: torch (CPU) and silero-vad, the reference the Silero detector is tested against
"$VENV/bin/pip" install -q --disable-pip-version-check '.[all,vad-reference]'

# A real capture path without sound hardware: PulseAudio with a null sink whose monitor is
# the default source. CI fails rather than quietly skipping the device tests.
if pulse_env=$(bash scripts/pulse.sh); then
    eval "$pulse_env"
    export NSAUDIO_REQUIRE_DEVICE=1
else
    echo "test.sh: PulseAudio did not start: device tests will be skipped" >&2
fi

# The browser example's test drives the chromium installed above: CI fails without it.
export NSAUDIO_REQUIRE_BROWSER=1

exec "$VENV/bin/python" -m pytest "$@"
