"""Fixtures for the fault tests: slot-coded audio files, fault servers, and a private test CA."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from .server import FaultServer
from .slots import SlotAudio, make_speech
from .support import Run, check_times, stream


@dataclass(frozen=True)
class SpeechFile:
    audio: SlotAudio
    path: Path


def _speech(factory: pytest.TempPathFactory, seconds: float, **kw: int) -> SpeechFile:
    audio = make_speech(seconds, **kw)
    return SpeechFile(audio, audio.write(factory.mktemp("speech") / f"slots{seconds:g}s.wav"))


@pytest.fixture(scope="session")
def speech20(tmp_path_factory: pytest.TempPathFactory) -> SpeechFile:
    """20 s of 48 kHz stereo slot-coded speech (2.5 s voiced, 0.5 s silent, again)."""
    return _speech(tmp_path_factory, 20)


@pytest.fixture(scope="session")
def speech60(tmp_path_factory: pytest.TempPathFactory) -> SpeechFile:
    return _speech(tmp_path_factory, 60)


@dataclass(frozen=True)
class Reference:
    """An uncut run: what the CLI printed, and every byte of audio the server got."""

    run: Run
    audio: bytes


def _reference(speech: SpeechFile) -> Reference:
    with FaultServer() as server:
        run = stream(server, speech.path)
        assert run.proc.returncode == 0, run.stderr
        assert run.words == speech.audio.words
        check_times(run.results)
        assert len(server.sessions) == 1
        return Reference(run, bytes(server.sessions[0].audio))


@pytest.fixture(scope="session")
def reference20(speech20: SpeechFile) -> Reference:
    return _reference(speech20)


@pytest.fixture(scope="session")
def reference60(speech60: SpeechFile) -> Reference:
    return _reference(speech60)


@dataclass(frozen=True)
class CertAuthority:
    ca_pem: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


_SERVER_EXT = """\
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""


@pytest.fixture(scope="session")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> CertAuthority:
    """A self-signed CA and a 127.0.0.1 server certificate it signed, made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test CA")
    return make_ca(tmp_path_factory.mktemp("ca"), openssl)


def make_ca(d: Path, openssl: str = "openssl") -> CertAuthority:
    """:func:`private_ca` in directory ``d`` (also for scripts: ``python -m tests.faults.tls_flood``)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=nsaudio fault-test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (d / "server.ext").write_text(_SERVER_EXT)
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "server.ext")  # fmt: skip
    return CertAuthority(d / "ca.pem", d / "server.pem", d / "server.key")
