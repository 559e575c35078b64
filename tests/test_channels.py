"""A session per input channel from Python (``nsaudio/channels.py``): names, file names,
and ``split_channels`` as the README shows it, against the local server."""

from __future__ import annotations

import pytest

from nsaudio.channels import channel_names, channel_path, split_channels
from nsaudio.errors import InputError
from nsaudio.neuralspace.protocol import StreamParams
from nsaudio.server.app import LocalServer
from nsaudio.sinks.neuralspace import NeuralSpaceSink
from nsaudio.sources import FileSource

from .conftest import FIXTURES, MANIFEST, wer

CALL = next(f for f in MANIFEST if f["kind"] == "conversation")


def test_names_default_to_ch1_ch2_and_given_ones_are_checked():
    assert channel_names(None, 3) == ["ch1", "ch2", "ch3"]
    assert channel_names([" agent", "customer "], 2) == ["agent", "customer"]
    assert channel_names(["Dr. Née", "客户"], 2) == ["Dr. Née", "客户"]


@pytest.mark.parametrize(
    ("names", "channels", "says"),
    [
        (None, 1, "call.wav has 1 channel: splitting channels needs 2 or more"),
        (["a"], 2, "1 channel names for the 2 channels of call.wav: give one each"),
        (["a", "b", "c"], 2, "3 channel names for the 2 channels"),
        (["a", "a"], 2, "channel names must differ: a, a"),
        (["a", ""], 2, "a channel name is empty"),
        (["a", "x" * 33], 2, "longer than 32 characters"),
        (["a", "b/c"], 2, "channel name 'b/c'"),
        (["a", "<v>"], 2, "channel name '<v>'"),
        (["a", "tab\there"], 2, "channel name 'tab\\there'"),
        (["a", ".hidden"], 2, "not starting with a dot"),
    ],
)
def test_names_that_do_not_fit_are_refused(names, channels, says):
    with pytest.raises(InputError) as caught:
        channel_names(names, channels, "call.wav")
    assert says in str(caught.value)


def test_a_channels_file_is_named_after_it():
    assert channel_path("out/sent.wav", "agent") == "out/sent.agent.wav"
    assert channel_path("sent", "ch2") == "sent.ch2"


@pytest.mark.server
def test_split_channels_as_the_readme_shows_it():
    with LocalServer() as server:
        source = FileSource(FIXTURES / CALL["file"])
        pipeline = split_channels(
            source,
            lambda name, on_result: NeuralSpaceSink(
                server.base_url, "any-key", StreamParams(), on_result=on_result
            ),
            names=["agent", "customer"],
        )
        fulls = [r for r in pipeline.results() if r.full and r.text]
    for name, texts in zip(CALL["names"], CALL["channel_texts"], strict=True):
        said = " ".join(r.text for r in fulls if r.channel == name)
        assert wer(" ".join(texts), said) == 0, (name, said)
    assert [r.start_time for r in fulls] == sorted(r.start_time for r in fulls)
    mono = FileSource(FIXTURES / "speech_16000_mono_int16.wav")
    try:
        with pytest.raises(InputError, match="has 1 channel"):
            split_channels(mono, lambda name, on_result: NeuralSpaceSink("", ""))
    finally:
        mono.close()
