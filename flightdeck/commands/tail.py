"""``flightdeck tail``: the live monitor (cockpit, or headless with --json).

Exit codes: 0 ok; 2 usage error (no PATH and no --socket, --once on a file
that does not exist, a bad --budget/--interval/--rules/--prices); 3 the socket
is already served by a live monitor, or its path or folder is unsafe.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SOCKET = 3


def _fail(message: str, code: int) -> int:
    print(f"flightdeck tail: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    from flightdeck.ingest.engine import Engine
    from flightdeck.ingest.live import parse_budget, print_once, run_json

    paths: list[str] = list(args.paths or [])
    if not paths and not args.socket:
        return _fail("give a PATH to follow or --socket PATH to listen on", EXIT_USAGE)
    if args.once and not args.json:
        return _fail("--once goes with --json", EXIT_USAGE)
    if args.interval is not None and args.interval <= 0:
        return _fail("--interval must be more than 0 seconds", EXIT_USAGE)
    if args.once:
        missing = [p for p in paths if not Path(p).expanduser().exists()]
        if missing:
            return _fail(f"{missing[0]}: no such file or folder", EXIT_USAGE)
    if args.theme and not args.json:
        # Before anything is opened or bound: a typo in --theme changes nothing.
        from flightdeck.cockpit.themes import unknown_theme

        problem = unknown_theme(args.theme)
        if problem is not None:
            return _fail(problem, EXIT_USAGE)
    budget = None
    if args.budget:
        try:
            budget = parse_budget(args.budget)
        except ValueError as exc:
            return _fail(str(exc), EXIT_USAGE)
    if getattr(args, "prices", None):
        try:
            from flightdeck.core.pricing import Pricer, set_default_pricer

            set_default_pricer(Pricer(args.prices))
        except (OSError, ValueError) as exc:
            return _fail(f"--prices {args.prices}: {exc}", EXIT_USAGE)
    try:
        engine = Engine(paths, socket_path=args.socket if not args.once else None,
                        rules_path=args.rules, budget=budget)
    except (OSError, ValueError) as exc:  # RuleError is a ValueError
        return _fail(str(exc), EXIT_USAGE)

    if args.once:
        print_once(engine)
        return EXIT_OK

    from flightdeck.ingest.server import SocketError

    try:
        if args.json:
            try:
                run_json(engine, args.interval)
            except KeyboardInterrupt:
                pass
            return EXIT_OK
        engine.start()
        try:
            from flightdeck.cockpit.app import run_cockpit

            return int(run_cockpit(engine, theme=args.theme) or 0)
        finally:
            engine.stop()
    except SocketError as exc:
        return _fail(str(exc), EXIT_SOCKET)
