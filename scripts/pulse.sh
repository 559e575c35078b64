#!/usr/bin/env bash
# A real capture path on a machine without sound hardware (headless CI, containers), in a
# PulseAudio daemon of nsaudio's own:
#
#   paplay ──▶ null sink "nsaudio_null" ──▶ nsaudio_null.monitor (the default source)
#              ◀── PulseAudio ◀── ALSA "pulse"/"default" ◀── PortAudio ◀── nsaudio mic:
#
# The daemon is private: its socket, runtime, state and cookie live in a directory of its
# own under $TMPDIR, it reads no system or user configuration, and nothing but its clients
# (given PULSE_SERVER) talks to it. A desktop's PulseAudio (or PipeWire) is never touched:
# its default sink and source, modules and daemons stay as they were.
#
# Prints on stdout the environment a process needs to use the daemon, as `export KEY=VALUE`
# lines, so that  eval "$(bash scripts/pulse.sh)"  sets them:
#   PULSE_SERVER        the daemon's socket
#   NSAUDIO_PULSE_DIR   its directory (what --kill stops)
#   ALSA_CONFIG_PATH    only where ALSA's default device does not already route to
#                       PulseAudio: an asound.conf in that directory, loaded after the
#                       system's alsa.conf (never /etc or ~)
# and, when this run started the daemon, a last line "# started" (a comment to eval), so
# that a caller knows to stop it when done.
#
# Idempotent: where PULSE_SERVER already names a live daemon of this script (an earlier
# eval in this shell, or scripts/test.sh), that one is reused; otherwise a new one starts.
# A daemon that no client has used for 10 minutes exits by itself.
#
# Options:
#   --sink NAME     the null sink (default nsaudio_null)
#   --alsa-config   write and print ALSA_CONFIG_PATH even where ALSA already routes to pulse
#   --kill [DIR]    stop the daemon in DIR (default $NSAUDIO_PULSE_DIR) and remove DIR
set -euo pipefail

SINK=nsaudio_null
FORCE_ALSA=0
while (($#)); do
    case "$1" in
    --sink) SINK="$2"; shift 2 ;;
    --alsa-config) FORCE_ALSA=1; shift ;;
    --kill)
        KILL_DIR="${NSAUDIO_PULSE_DIR:-}"
        if (($# > 1)) && [[ $2 != -* ]]; then KILL_DIR="$2"; shift; fi
        shift
        ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "pulse.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
# The silent sink that keeps the null sink's clock fast (see below).
DRAIN=nsaudio_drain
# A daemon no client has used for this long exits by itself: one that a killed run could
# not stop does not linger. Its callers start another when the one they named is gone.
IDLE_EXIT=600
ROOT="${TMPDIR:-/tmp}/nsaudio-pulse-$(id -u)"

say() { echo "pulse.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# Stop the daemon whose directory is $1 (ours: under $ROOT), wait for it, remove the directory.
stop_daemon() {
    local dir="$1" pid
    case "$dir" in
    "$ROOT"/private.*) ;;
    *) die "--kill: $dir is not a directory of this script's daemons" ;;
    esac
    pid=$(cat "$dir/run/pulse/pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -rf "$dir"
}

if [ -n "${KILL_DIR+set}" ]; then
    [ -n "$KILL_DIR" ] || die "--kill: no directory given and NSAUDIO_PULSE_DIR is not set"
    stop_daemon "$KILL_DIR"
    say "stopped the daemon in $KILL_DIR"
    exit 0
fi

for tool in pulseaudio pactl; do
    command -v "$tool" >/dev/null || die "$tool not found: install pulseaudio pulseaudio-utils"
done

mkdir -p "$ROOT"
chmod 700 "$ROOT"

# Reuse the daemon PULSE_SERVER names, if it is one of ours and answers.
DIR=""
case "${PULSE_SERVER:-}" in
unix:"$ROOT"/private.*/native)
    candidate="${PULSE_SERVER#unix:}"
    candidate="${candidate%/native}"
    if pactl info >/dev/null 2>&1; then DIR="$candidate"; fi
    ;;
esac

STARTED=0
if [ -z "$DIR" ]; then
    DIR=$(mktemp -d "$ROOT/private.XXXXXXXX")
    mkdir -p "$DIR/run" "$DIR/home" "$DIR/state"
    chmod 700 "$DIR" "$DIR/run"
    # A null sink with nothing recording from it sleeps in blocks of up to 2 s, so a new
    # recording waits that long for its first audio (measured: 1.4-1.9 s). A permanent
    # low-latency reader of the monitor keeps the sink ticking every few milliseconds, as
    # real hardware does; it plays into the silent drain sink and costs about 1% of a core.
    # Anonymous clients: the socket's directory is this user's alone (mode 700).
    cat >"$DIR/daemon.pa" <<EOF
load-module module-native-protocol-unix socket=$DIR/native auth-anonymous=1
load-module module-null-sink sink_name=$SINK sink_properties=device.description=$SINK
load-module module-null-sink sink_name=$DRAIN sink_properties=device.description=$DRAIN
load-module module-loopback source=$SINK.monitor sink=$DRAIN latency_msec=20 source_dont_move=true sink_dont_move=true
set-default-sink $SINK
set-default-source $SINK.monitor
EOF
    # -n: none of the system's default.pa (no device detection, no D-Bus, no X11); HOME and
    # the runtime and state paths point into DIR, so its cookie and files land there too.
    # Works as root (a per-user daemon, not --system: root's daemon only warns).
    if ! env -u PULSE_SERVER HOME="$DIR/home" XDG_RUNTIME_DIR="$DIR/run" \
        PULSE_RUNTIME_PATH="$DIR/run/pulse" PULSE_STATE_PATH="$DIR/state" \
        pulseaudio --daemonize=yes -n -F "$DIR/daemon.pa" --exit-idle-time="$IDLE_EXIT" \
        --use-pid-file=yes --log-target="file:$DIR/daemon.log" >/dev/null 2>&1; then
        sed 's/^/  /' "$DIR/daemon.log" >&2 2>/dev/null || true
        rm -rf "$DIR"
        die "pulseaudio failed to start (log above)"
    fi
    export PULSE_SERVER="unix:$DIR/native"
    for _ in $(seq 100); do
        pactl info >/dev/null 2>&1 && break
        sleep 0.05
    done
    if ! pactl info >/dev/null 2>&1; then
        log=$(cat "$DIR/daemon.log" 2>/dev/null || true)
        stop_daemon "$DIR"
        die "pulseaudio started but does not answer: $log"
    fi
    STARTED=1
fi
export PULSE_SERVER="unix:$DIR/native"

# ALSA's default device must reach PulseAudio for PortAudio to see "pulse" and "default".
# Debian/Ubuntu's pulseaudio package installs a hook that does it while a daemon answers
# (at PULSE_SERVER, here).
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
    cat >"$DIR/asound.conf" <<'EOF'
# Written by nsaudio scripts/pulse.sh: ALSA's default device is PulseAudio.
pcm.!default { type pulse hint { show on description "PulseAudio (nsaudio pulse.sh)" } }
ctl.!default { type pulse }
EOF
    # The "pulse" device too, unless libasound2-plugins' 50-pulseaudio.conf defines it
    # (defining it twice makes PortAudio fail to initialise).
    if ! grep -qs '^pcm\.pulse' /etc/alsa/conf.d/* /usr/etc/alsa/conf.d/* /etc/asound.conf; then
        cat >>"$DIR/asound.conf" <<'EOF'
pcm.pulse { type pulse hint { show on description "PulseAudio Sound Server" } }
ctl.pulse { type pulse }
EOF
    fi
    ALSA_CONFIG="$main_conf:$DIR/asound.conf"
fi

printf 'export PULSE_SERVER=%q\n' "$PULSE_SERVER"
printf 'export NSAUDIO_PULSE_DIR=%q\n' "$DIR"
[ -z "$ALSA_CONFIG" ] || printf 'export ALSA_CONFIG_PATH=%q\n' "$ALSA_CONFIG"
if ((STARTED)); then
    echo "# started"
    say "started a private PulseAudio: sink $SINK, source $SINK.monitor, in $DIR (stop: bash scripts/pulse.sh --kill $DIR)"
else
    say "reusing the private PulseAudio in $DIR"
fi
