"""``nsaudio languages``: what the service (or the local server) streams."""

from __future__ import annotations

import argparse
import json

from .service import add_service_options, service_endpoint


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("languages", parents=[common], help="list the languages the service streams")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    add_service_options(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with service_endpoint(args) as endpoint:
        langs = endpoint.languages()
    print(json.dumps(langs) if args.json else "\n".join(langs))
    return 0
