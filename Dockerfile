# nsaudio gateway: phone calls in (Twilio Media Streams, Asterisk AudioSocket), transcripts out.
#   docker build -t nsaudio-gateway .
#   docker run -p 8080:8080 -p 8081:8081 -e NS_API_KEY=... \
#     -v /path/to/token:/run/secrets/twilio-auth-token:ro nsaudio-gateway
# The image installs nothing at run time; the container runs as an unprivileged user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
# libsndfile for soundfile (nsaudio's file sources; the gateway itself reads no files).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsndfile1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY nsaudio ./nsaudio
# vad: onnxruntime, for --gate-vad silero (the model itself ships in the package).
RUN pip install --no-compile '.[gateway,vad]' && useradd --uid 10001 --no-create-home nsaudio

USER 10001
EXPOSE 8080 8081
# SIGTERM drains: readiness goes false at once, calls in progress finish (up to
# --drain-timeout), the rest end cleanly with their verdicts, exit 0 when all were complete.
STOPSIGNAL SIGTERM
ENTRYPOINT ["nsaudio", "gateway"]
CMD ["--twilio", "0.0.0.0:8080", "--twilio-auth-token-file", "/run/secrets/twilio-auth-token", \
     "--ops", "0.0.0.0:8081", "--drain-timeout", "60"]
