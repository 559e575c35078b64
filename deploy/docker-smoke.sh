#!/usr/bin/env bash
# Build the gateway's image and prove it works: /healthz and /readyz, a signed Twilio call
# whose transcript file appears, SIGTERM with a call in flight (readiness 503 at once, the
# call completes, exit 0 within the drain deadline), the process's uid (10001), and no secret
# in the container's log. Needs a Docker engine, curl, and a Python with nsaudio's
# dependencies (PYTHON, default python3) for the local speech server and the caller, both run
# on the host from this checkout; the container shares the host's network (--network host).
# Not part of the test suite (CI has no Docker engine).
#
#   deploy/docker-smoke.sh                  # from anywhere in the checkout
#   PYTHON=.venv/bin/python IMAGE=nsaudio-gateway:dev deploy/docker-smoke.sh
#
# Ports (loopback): SERVER_PORT 18765 (speech server), TWILIO_PORT 18080, OPS_PORT 18081;
# WORKERS (default 2, as in deploy/kubernetes/gateway.yaml).
# Without Docker Hub, make the base image first: deploy/standin-base.sh.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
IMAGE=${IMAGE:-nsaudio-gateway}
SERVER_PORT=${SERVER_PORT:-18765}
TWILIO_PORT=${TWILIO_PORT:-18080}
OPS_PORT=${OPS_PORT:-18081}
WORKERS=${WORKERS:-2}
SID1=CA11111111111111111111111111111111 SID2=CA22222222222222222222222222222222
SID3=CA33333333333333333333333333333333
DRAIN=30 # --drain-timeout: the deadline the SIGTERM check holds the container to
ops=http://127.0.0.1:$OPS_PORT
name=nsaudio-smoke-$$
work=$(mktemp -d)
server=
failed=() # checks that failed without stopping the rest

step() { printf '== %s\n' "$*"; }
fail() {
    printf 'FAIL: %s\n' "$*" >&2
    docker logs --tail 30 "$name" 2>&1 >&2 || true
    exit 1
}
cleanup() {
    docker rm -f "$name" >/dev/null 2>&1 || true
    [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf -- "$work"
}
trap cleanup EXIT
status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }
wait_for() { # URL: up to 30 s for an answer of 200
    for _ in $(seq 60); do
        [[ $(status "$1") == 200 ]] && return 0
        sleep 0.5
    done
    return 1
}

step "docker build -t $IMAGE ."
# The build's own network is the host's: apt-get and pip reach out whatever the bridge setup.
docker build --network host -q -t "$IMAGE" . >/dev/null

step "speech server on 127.0.0.1:$SERVER_PORT (nsaudio serve --engine cheap)"
"$PYTHON" -m nsaudio serve --engine cheap --port "$SERVER_PORT" -q &
server=$!
for _ in $(seq 60); do
    [[ $(status "http://127.0.0.1:$SERVER_PORT/") != 000 ]] && break # any HTTP answer
    sleep 0.5
done
[[ $(status "http://127.0.0.1:$SERVER_PORT/") != 000 ]] || fail "the speech server did not start"
# Someone else's server on the port answers too: ours must still be running.
kill -0 "$server" 2>/dev/null || fail "the speech server exited (port $SERVER_PORT in use?)"

# A throwaway Auth Token, readable by the container's user (uid 10001), and a transcript
# directory it may write to.
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$token" >"$work/token"
chmod 644 "$work/token"
mkdir -m 777 "$work/calls"

step "docker run $IMAGE (signed Twilio on :$TWILIO_PORT, ops on :$OPS_PORT, $WORKERS worker(s))"
# As deploy/kubernetes/gateway.yaml runs it: a read-only root filesystem with a /tmp of its
# own, no capabilities, no privilege escalation, --workers 2 (WORKERS=1: one process).
docker run -d --name "$name" --network host \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    -e NS_API_KEY=docker-smoke-key \
    -v "$work/token:/run/secrets/twilio-auth-token:ro" -v "$work/calls:/calls" \
    "$IMAGE" \
    --twilio "127.0.0.1:$TWILIO_PORT" --twilio-auth-token-file /run/secrets/twilio-auth-token \
    --ops "127.0.0.1:$OPS_PORT" --drain-timeout "$DRAIN" --out-dir /calls --workers "$WORKERS" \
    --base-url "http://127.0.0.1:$SERVER_PORT" >/dev/null
wait_for "$ops/healthz" || fail "/healthz did not answer 200"
# Ready once every worker listens (503 until then).
wait_for "$ops/readyz" || fail "/readyz did not answer 200"
echo "/healthz $(status "$ops/healthz"), /readyz $(status "$ops/readyz")"

# Every process of the container (the supervisor and its workers), as the host sees them.
procs=$(docker top "$name" -eo pid,uid,args | tail -n +2)
echo "$procs"
expected=$((WORKERS > 1 ? WORKERS + 1 : 1))
[[ $(awk '$2 == 10001' <<<"$procs" | wc -l) == "$expected" && $(wc -l <<<"$procs") == "$expected" ]] ||
    fail "not every one of the $expected gateway processes runs as uid 10001"

url=ws://127.0.0.1:$TWILIO_PORT/media
wav=fixtures/speech_8000_mono_ulaw.wav
step "a signed call of 5.3 s"
"$PYTHON" deploy/twilio_call.py "$url" --token-file "$work/token" --wav "$wav" --repeat 2 \
    --call-sid "$SID1" || fail "the call did not end normally"
first=$work/calls/$SID1.jsonl
for _ in $(seq 20); do [[ -s $first ]] && break; sleep 0.5; done
[[ -s $first ]] || fail "no transcript file for the call"
echo "transcript $(basename "$first"): $(wc -l <"$first") result(s): $(head -c 200 "$first")"
# A failure here is noted and the other checks go on (the script still exits 1).
if metrics=$(curl -s --max-time 5 "$ops/metrics") && grep -E '^nsaudio_gateway_calls_total' <<<"$metrics"; then
    :
else
    failed+=("/metrics did not answer with the call (status $?)")
    echo "FAIL: ${failed[-1]}"
fi

step "an unsigned call is refused"
if "$PYTHON" deploy/twilio_call.py "$url" --wav "$wav" --call-sid "$SID3" \
    2>"$work/refused"; then
    fail "an unsigned upgrade was accepted"
fi
cat "$work/refused"

step "SIGTERM with a call in flight (10.6 s call, docker stop 3 s in)"
"$PYTHON" deploy/twilio_call.py "$url" --token-file "$work/token" --wav "$wav" --repeat 4 \
    --call-sid "$SID2" >"$work/call2" 2>&1 &
caller=$!
sleep 3
t0=$(date +%s.%N)
docker stop -t $((DRAIN + 15)) "$name" >/dev/null &
stopper=$!
sleep 1
during=$(status "$ops/readyz")
echo "/readyz during the drain: $during"
[[ $during == 503 ]] || fail "/readyz was $during during the drain, not 503"
wait "$caller" || { cat "$work/call2"; fail "the call in flight did not end normally"; }
cat "$work/call2"
wait "$stopper"
t1=$(date +%s.%N)
code=$(docker inspect -f '{{.State.ExitCode}}' "$name")
took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
echo "exit code $code, $took s after SIGTERM (drain deadline ${DRAIN} s)"
[[ $code == 0 ]] || fail "exit code $code after the drain"
awk -v t="$took" -v d="$DRAIN" 'BEGIN { exit !(t < d) }' || fail "the drain took $took s"
[[ -s $work/calls/$SID2.jsonl ]] || fail "no transcript file for the call in flight"
echo "transcript $SID2.jsonl: $(wc -l <"$work/calls/$SID2.jsonl") result(s)"

step "no secret in the container's log"
if docker logs "$name" 2>&1 | grep -qF -e "$token" -e docker-smoke-key; then
    fail "a secret appears in the container's log"
fi
docker logs "$name" 2>&1 | tail -8
if ((${#failed[@]})); then
    printf 'FAIL: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "PASS: image $IMAGE"
