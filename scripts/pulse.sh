#!/usr/bin/env bash
# A real capture path on a machine without sound hardware (headless CI, containers):
#
#   paplay ──▶ null sink "nsaudio_null" ──▶ nsaudio_null.monitor (the default source)
#              ◀── PulseAudio ◀── ALSA "pulse"/"default" ◀── PortAudio ◀── nsaudio mic:
#
# Idempotent: reuses a running PulseAudio (or pipewire-pulse) and sinks already loaded.
# Works as root (a per-user daemon, not --system: root's daemon only warns) and as a user.
#
# Prints on stdout the environment variables a process needs to reach the daemon, as
# `export KEY=VALUE` lines, so that  eval "$(scripts/pulse.sh)"  sets them:
#   PULSE_SERVER       always (harmless where it is the default; needed under sudo or when
#                      HOME or XDG_RUNTIME_DIR differ between this shell and the tests)
#   ALSA_CONFIG_PATH   only where ALSA's default device does not already route to
#                      PulseAudio: the script then writes an asound.conf under a temp dir
#                      (never /etc or ~), loaded after the system's alsa.conf.
#
# Options:
#   --sink NAME     the null sink (default nsaudio_null)
#   --no-default    do not make the sink and its monitor the defaults
#   --alsa-config   write and print ALSA_CONFIG_PATH even where ALSA already routes to pulse
#   --kill          stop the daemon (as `pulseaudio --kill`) and exit
set -euo pipefail

SINK=nsaudio_null
SET_DEFAULT=1
FORCE_ALSA=0
while (($#)); do
    case "$1" in
    --sink) SINK="$2"; shift 2 ;;
    --no-default) SET_DEFAULT=0; shift ;;
    --alsa-config) FORCE_ALSA=1; shift ;;
    --kill) pulseaudio --kill 2>/dev/null || true; exit 0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "pulse.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
# Silent null sink and the sink that keeps its clock fast (see below).
DRAIN=nsaudio_drain

say() { echo "pulse.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in pulseaudio pactl; do
    command -v "$tool" >/dev/null || die "$tool not found: install pulseaudio pulseaudio-utils"
done

STATE="${TMPDIR:-/tmp}/nsaudio-pulse-$(id -u)"
mkdir -p "$STATE"
chmod 700 "$STATE"

# Two runs at once (parallel test sessions) must not both start a daemon or load a sink.
if command -v flock >/dev/null; then
    exec 9>"$STATE/lock"
    flock -w 30 9 || die "another pulse.sh is still running (lock $STATE/lock)"
fi

if ! pactl info >/dev/null 2>&1; then
    # As root, XDG_RUNTIME_DIR is usually unset: PulseAudio then keeps its socket in
    # /tmp/pulse-XXXX, linked from ~/.config/pulse, where clients of the same HOME find it.
    # A stale XDG_RUNTIME_DIR that does not exist would make it fail: drop it.
    if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ ! -d "$XDG_RUNTIME_DIR" ]; then
        unset XDG_RUNTIME_DIR
    fi
    # --exit-idle-time=-1: never exit for want of clients (CI jobs run minutes apart).
    if ! pulseaudio --daemonize=yes --exit-idle-time=-1 --log-target=stderr \
        >"$STATE/daemon.log" 2>&1; then
        sed 's/^/  /' "$STATE/daemon.log" >&2
        die "pulseaudio failed to start (log above)"
    fi
    for _ in $(seq 100); do
        pactl info >/dev/null 2>&1 && break
        sleep 0.05
    done
    pactl info >/dev/null 2>&1 || die "pulseaudio started but does not answer (see $STATE/daemon.log)"
    say "started PulseAudio as $(id -un)"
fi

has_sink() { pactl list short sinks | awk -v s="$1" '$2 == s { found = 1 } END { exit !found }'; }

for s in "$SINK" "$DRAIN"; do
    if ! has_sink "$s"; then
        pactl load-module module-null-sink sink_name="$s" \
            sink_properties=device.description="$s" >/dev/null
        say "loaded null sink $s"
    fi
done

# A null sink with nothing recording from it sleeps in blocks of up to 2 s, so a new
# recording waits that long for its first audio (measured: 1.4-1.9 s). A permanent
# low-latency reader of the monitor keeps the sink ticking every few milliseconds, as real
# hardware does; it plays into the silent drain sink and costs about 1% of a core.
if ! pactl list short modules | grep -q "module-loopback.*source=$SINK\.monitor "; then
    pactl load-module module-loopback source="$SINK.monitor" sink="$DRAIN" latency_msec=20 \
        source_dont_move=true sink_dont_move=true >/dev/null
fi

if ((SET_DEFAULT)); then
    pactl set-default-sink "$SINK"
    pactl set-default-source "$SINK.monitor"
fi

# ALSA's default device must reach PulseAudio for PortAudio to see "pulse" and "default".
# Debian/Ubuntu's pulseaudio package installs a hook that does it while a daemon runs.
alsa_routes_to_pulse() {
    local f
    for f in /etc/alsa/conf.d/* /usr/etc/alsa/conf.d/* /etc/asound.conf ~/.asoundrc \
        "${XDG_CONFIG_HOME:-$HOME/.config}/alsa/asoundrc"; do
        [ -r "$f" ] || continue
        grep -qs conf_pulse_hook_load_if_running "$f" && return 0
        grep -qs '!default' "$f" && grep -qsE 'type[[:space:]]+pulse' "$f" && return 0
    done
    return 1
}

ALSA_CONFIG=""
if ((FORCE_ALSA)) || ! alsa_routes_to_pulse; then
    main_conf=""
    for f in /usr/share/alsa/alsa.conf /usr/local/share/alsa/alsa.conf /etc/alsa/alsa.conf; do
        [ -r "$f" ] && { main_conf="$f"; break; }
    done
    [ -n "$main_conf" ] || die "ALSA's alsa.conf not found: install libasound2"
    cat >"$STATE/asound.conf" <<'EOF'
# Written by nsaudio scripts/pulse.sh: ALSA's default device is PulseAudio.
pcm.!default { type pulse hint { show on description "PulseAudio (nsaudio pulse.sh)" } }
ctl.!default { type pulse }
EOF
    # The "pulse" device too, unless libasound2-plugins' 50-pulseaudio.conf defines it
    # (defining it twice makes PortAudio fail to initialise).
    if ! grep -qs '^pcm\.pulse' /etc/alsa/conf.d/* /usr/etc/alsa/conf.d/* /etc/asound.conf; then
        cat >>"$STATE/asound.conf" <<'EOF'
pcm.pulse { type pulse hint { show on description "PulseAudio Sound Server" } }
ctl.pulse { type pulse }
EOF
    fi
    ALSA_CONFIG="$main_conf:$STATE/asound.conf"
fi

server=$(pactl info | sed -n 's/^Server String: //p')
case "$server" in
/*) server="unix:$server" ;;
esac
printf 'export PULSE_SERVER=%q\n' "$server"
[ -z "$ALSA_CONFIG" ] || printf 'export ALSA_CONFIG_PATH=%q\n' "$ALSA_CONFIG"
say "ready: sink $SINK, source $SINK.monitor$( ((SET_DEFAULT)) && echo ' (defaults)'), server $server"
