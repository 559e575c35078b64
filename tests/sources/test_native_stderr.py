"""Standard error survives MP3 decoding on many threads at once, and libmpg123 stays quiet."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from ..conftest import FIXTURES, ROOT

MP3 = FIXTURES / "speech_44100_stereo_mp3.mp3"

# Several threads decode damaged MP3 copies (libmpg123 prints notes on fd 2 as it resyncs)
# in small blocks, over and over; then fd 2 must still be the stderr the process started
# with: os.write(2, ...) and a child process must both reach it.
CHILD = textwrap.dedent(
    """
    import os, subprocess, sys, threading
    from nsaudio.sources.file import FileSource

    paths = sys.argv[1:]
    before = os.fstat(2)
    errors = []

    def decode(path):
        try:
            for _ in range(6):
                for _block in FileSource(path, block_frames=512):
                    pass
        except BaseException as err:
            errors.append(repr(err))

    threads = [threading.Thread(target=decode, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = os.fstat(2)
    os.write(2, b"fd 2 still reaches stderr\\n")
    subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('and a child too\\\\n')"])
    print((before.st_dev, before.st_ino) == (after.st_dev, after.st_ino), errors)
    """
)


def test_threads_decoding_mp3_leave_fd_2_alone_and_the_decoder_quiet(tmp_path):
    data = MP3.read_bytes()
    paths = []
    for i in range(6):
        mid = len(data) // 2 + 97 * i
        damaged = data[:mid] + bytes(range(50, 250)) + data[mid + 200 :]
        path = tmp_path / f"damaged{i}.mp3"
        path.write_bytes(damaged)
        paths.append(str(path))
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-c", CHILD, *paths],  # dev: ResourceWarnings too
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True []", proc.stdout
    assert proc.stderr.splitlines() == ["fd 2 still reaches stderr", "and a child too"]
