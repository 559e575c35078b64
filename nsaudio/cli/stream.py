"""``nsaudio stream SOURCE``: audio to the speech service, transcripts to stdout."""

from __future__ import annotations

import argparse
from typing import Any

from ..channels import channel_names, channel_path, check_channel_name
from ..detectors.base import DETECTORS, make_detector
from ..errors import InputError
from ..neuralspace.protocol import RESERVED_QUERY_KEYS, StreamParams, check_query_key
from ..sinks.files import PendingFile
from ..sources import open_source
from ..stages.resampler import downmix_weights
from .options import (
    add_source_options,
    milliseconds,
    positive_float,
    unit_interval,
    whole_number,
)
from .output import OUTPUTS
from .service import add_service_options, check_before_start, service_endpoint
from .stream_run import build, conclude, execute, status_line, transcript_writer

MIN_STREAM_FRAME_MS, MAX_STREAM_FRAME_MS = 20, 1000


def frame_ms(text: str) -> float:
    value = positive_float(text)
    if not MIN_STREAM_FRAME_MS <= value <= MAX_STREAM_FRAME_MS:
        raise argparse.ArgumentTypeError(
            f"must be {MIN_STREAM_FRAME_MS} to {MAX_STREAM_FRAME_MS} ms, not {text}"
        )
    return value


def pace(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(
            f"must be 0 (as fast as possible) or a positive factor, not {text}"
        )
    return value


#: The option that sets each query key nsaudio sets itself (max_chunk_size: --max-chunk-size).
_OPTION_OF = {key: "--" + key.replace("_", "-") for key in RESERVED_QUERY_KEYS}


class _QueryParam(argparse.Action):
    """``--param KEY=VALUE``, repeatable, into a dict; a key nsaudio sets or gives twice is
    a usage error."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        key, sep, value = str(values).partition("=")
        if not sep or not key:
            parser.error(f"argument --param: expected KEY=VALUE, not {values!r}")
        if key in _OPTION_OF:
            parser.error(f"argument --param: nsaudio sets {key} itself: use {_OPTION_OF[key]}")
        try:
            check_query_key(key)
        except InputError as err:
            parser.error(f"argument --param: {err}")
        params = dict(getattr(namespace, self.dest) or {})
        if key in params:
            parser.error(f"argument --param: {key} given twice")
        params[key] = value
        setattr(namespace, self.dest, params)


def names_list(text: str) -> list[str]:
    """``agent,customer``: the channels' labels, each checked."""
    names = [name.strip() for name in text.split(",")]
    try:
        for name in names:
            check_channel_name(name)
    except InputError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return names


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "stream",
        parents=[common],
        help="stream audio to the speech service and print transcripts",
        description="Stream SOURCE (a file, - for stdin, mic:, mic:N or mic:NAME) to NeuralSpace "
        "VoiceAI, or to the built-in local server when NS_API_KEY is not set, and print the "
        "transcript as it comes.",
    )
    p.add_argument(
        "source", metavar="SOURCE", help="audio file, - (stdin), mic:, mic:N or mic:NAME"
    )
    p.add_argument(
        "--language", default="en", help="language code (default en; see 'nsaudio languages')"
    )
    add_source_options(p)
    p.add_argument(
        "--max-chunk-size",
        type=whole_number(1, 60, "seconds"),
        default=5,
        metavar="S",
        help="seconds of speech after which the service finalises (default 5)",
    )
    p.add_argument(
        "--vad-threshold",
        type=positive_float,
        default=0.5,
        metavar="X",
        help="the service's speech threshold, any positive number (default 0.5)",
    )
    p.add_argument("--disable-partial", action="store_true", help="ask for full results only")
    p.add_argument(
        "--param",
        action=_QueryParam,
        default={},
        metavar="KEY=VALUE",
        help="another query parameter for the service, sent unchanged (e.g. min_chunk_size=2); "
        "repeatable",
    )
    p.add_argument(
        "--frame-ms",
        type=frame_ms,
        default=100,
        metavar="MS",
        help="audio per message, 20 to 1000 ms (default 100)",
    )
    p.add_argument(
        "--pace",
        type=pace,
        default=None,
        metavar="F",
        help="send files at F x real time (default 1; 0: as fast as the service takes "
        "them; stdin from a pipe defaults to 0)",
    )
    p.add_argument(
        "--duration", type=positive_float, metavar="S", help="stop after S seconds of audio"
    )
    p.add_argument(
        "--output", choices=OUTPUTS, default="text", help="text (default), jsonl, srt or vtt"
    )
    p.add_argument(
        "-o", "--out", metavar="FILE", help="write the transcript to FILE instead of stdout"
    )
    p.add_argument(
        "--record",
        metavar="FILE.wav",
        help="also save the exact audio sent, as WAV (with --split-channels, one WAV per "
        "channel: FILE.NAME.wav)",
    )
    p.add_argument(
        "--no-status",
        action="store_true",
        help="no live status line on stderr (progress, level, speech/silence, audio sent); "
        "it shows only when stderr is a terminal, and not with -q",
    )
    split = p.add_argument_group(
        "one session per channel",
        "--split-channels streams each input channel (a call's agent and customer) to a "
        "session of its own, with its own gate, reconnects and verdict, and prints one "
        "transcript in time order, each line labelled with its channel: 'agent: ...' in text "
        'and SRT, a "channel" key in JSON Lines, <v agent> in WebVTT. Exit 0 only if every '
        "channel's transcript is complete.",
    )
    split.add_argument(
        "--split-channels",
        action="store_true",
        help="one session per input channel, instead of one for their mean (not with --channel)",
    )
    split.add_argument(
        "--channel-names",
        type=names_list,
        metavar="A,B,...",
        help="the channels' labels, one per channel, in order (default ch1,ch2,...)",
    )
    gate = p.add_argument_group(
        "speech gate",
        "The gate hears speech with a detector: energy (frames standing out of an adaptive "
        "noise floor) or silero (a neural voice detector, for music, clicks or voices in the "
        "background). --gate sends only speech, with a pre-roll before each onset and a tail "
        "of the real audio after it so the service finalises each utterance; result times "
        "stay those of the stream.",
    )
    gate.add_argument("--gate", action="store_true", help="send only what the gate hears as speech")
    gate.add_argument(
        "--gate-vad",
        choices=list(DETECTORS),
        default="energy",
        help="the gate's speech detector: energy (default) or silero (needs "
        "pip install 'nsaudio[vad]')",
    )
    gate.add_argument(
        "--gate-vad-model",
        metavar="FILE.onnx",
        help="with --gate-vad silero: a Silero VAD v5/v6 ONNX model instead of the bundled one",
    )
    gate.add_argument(
        "--gate-threshold",
        type=unit_interval,
        default=0.5,
        metavar="X",
        help="the gate's sensitivity, above 0 to 1: higher needs louder speech (default 0.5; "
        "energy: 16 dB above the noise floor, 1 is 26 dB; silero: the speech probability)",
    )
    gate.add_argument(
        "--gate-pre-roll",
        type=milliseconds,
        default=300,
        metavar="MS",
        help="audio sent before each onset (default 300)",
    )
    gate.add_argument(
        "--gate-tail",
        type=milliseconds,
        default=700,
        metavar="MS",
        help="audio sent after the speech ends, past a 300 ms hangover, so the service's VAD "
        "hears the end (default 700: 1 s in all)",
    )
    p.add_argument(
        "--drain-timeout",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="how long to wait for the last result at the end (default 30)",
    )
    p.add_argument(
        "--ping-interval",
        type=positive_float,
        default=2.5,
        metavar="S",
        help="ping the service this often to know it is alive (default 2.5)",
    )
    p.add_argument(
        "--ping-timeout",
        type=positive_float,
        default=7.0,
        metavar="S",
        help="neither a pong nor a result this long after a ping: the connection is dead, "
        "reconnect (default 7; with the interval, a half-open connection is noticed within "
        "10 s)",
    )
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=10.0,
        metavar="S",
        help="how long opening a session may take; the first one is retried for as long "
        "(default 10)",
    )
    add_service_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """``nsaudio stream``: the source is opened (bad input, and channels that do not fit
    ``--split-channels``, fail here, before the service is reached), the run built against
    the service, executed, and its end told."""
    if args.record and not args.record.lower().endswith(".wav"):
        raise InputError(f"{args.record}: --record writes WAV: give a name ending in .wav")
    _check_split_options(args)
    if args.gate_vad_model is not None and args.gate_vad != "silero":
        raise InputError("--gate-vad-model is for --gate-vad silero")
    # Before the source and any connection: a missing extra or model is a usage error. (Each
    # stream gets a detector of its own when the run is built; the model is loaded once.)
    make_detector(args.gate_vad, args.gate_threshold, model_path=args.gate_vad_model)
    check_before_start(args)
    source = open_source(args.source, raw=args.raw)
    try:
        names = (
            channel_names(args.channel_names, source.channels, source.name)
            if args.split_channels
            else None
        )
        _check_outputs(args, source, names)
        with service_endpoint(args) as endpoint:
            params = StreamParams(
                language=endpoint.check_language(args.language),
                format=args.format,
                max_chunk_size=args.max_chunk_size,
                vad_threshold=args.vad_threshold,
                disable_partial=args.disable_partial,
                extra=args.param,
            )
            # The status line is put away first (the block's last exit), before any line
            # about how the run ended.
            with status_line(args) as status, transcript_writer(args, status) as writer:
                built = build(args, source, endpoint, params, writer, names)
                ended = execute(args, built, status)
        return conclude(args, built, ended)
    finally:
        close = getattr(source, "close", None)  # also when the run never read from it
        if close is not None:
            close()


def _check_outputs(args: argparse.Namespace, source: Any, names: list[str] | None) -> None:
    """What the run will make that can be refused is checked before the service starts (the
    local server takes 0.6 s): ``--channel`` against the input's channels, and ``-o`` and
    ``--record`` (each channel's file with ``--split-channels``) by the very check their
    files get when they are made."""
    if args.channel is not None:
        downmix_weights(source.channels, args.channel)
    paths = [args.out] if args.out not in (None, "-") else []
    if args.record:
        paths += [channel_path(args.record, n) for n in names] if names else [args.record]
    for path in paths:
        PendingFile(path).discard()


def _check_split_options(args: argparse.Namespace) -> None:
    if args.split_channels and args.channel is not None:
        raise InputError(
            "--split-channels sends every channel, --channel one of them: give one or the other"
        )
    if args.channel_names is not None and not args.split_channels:
        raise InputError("--channel-names labels the channels of --split-channels: give both")
