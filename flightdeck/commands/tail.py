"""``flightdeck tail``: the live monitor (cockpit, or headless with --json).

Exit codes: 0 ok; 2 usage error (no PATH, --socket or --otlp, --once on a file
that does not exist, a bad --budget/--interval/--rules/--prices/--otlp/--metrics/
--otlp-export, or the otel extra missing for them); 3 the socket is already
served by a live monitor, or its path or folder is unsafe, or the --otlp /
--metrics port cannot be bound.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from flightdeck.core.sanitize import clean

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_SOCKET = 3


def _fail(message: str, code: int) -> int:
    print(clean(f"flightdeck tail: {message}"), file=sys.stderr)  # messages name paths: shown as text
    return code


def run(args: argparse.Namespace) -> int:
    from flightdeck.ingest.discover import resolve_sources
    from flightdeck.ingest.documents import DocumentSource
    from flightdeck.ingest.engine import Engine
    from flightdeck.ingest.live import parse_budget, print_once, run_json

    paths: list[str] = list(args.paths or [])
    otlp_opt = getattr(args, "otlp", None)
    documents: list[DocumentSource] = []
    # No PATH and nothing to listen on: every agent log folder this user has.
    if paths or not (args.socket or otlp_opt):
        try:
            found, documents = resolve_sources(paths)
        except ValueError as exc:
            return _fail(f"{exc}; or listen with --socket PATH or --otlp HOST:PORT", EXIT_USAGE)
        paths = [str(p) for p in found]
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
    # As report does: the rates of earlier runs, kept in the cache folder, spare most starts
    # the load of genai-prices (about half of the cockpit's after-1 % run at 200k lines).
    try:
        from flightdeck.core.pricing import default_pricer
        from flightdeck.index.store import cache_root

        default_pricer().keep_rates(cache_root())
    except (OSError, RuntimeError):  # no home folder to keep them in: looked up as before
        pass
    try:
        otlp, exporters = _telemetry_options(args)
    except _OptionError as exc:
        return _fail(str(exc), exc.code)
    index = _follow_index(args) if paths else None
    try:
        engine = Engine(paths, socket_path=args.socket if not args.once else None,
                        rules_path=args.rules, budget=budget, documents=documents,
                        otlp=otlp if not args.once else None, exporters=exporters, index=index)
    except (OSError, ValueError) as exc:  # RuleError is a ValueError
        for exporter in exporters:
            exporter.close()
        return _fail(str(exc), EXIT_USAGE)

    if args.once:
        print_once(engine)
        engine.stop()  # sends what --otlp-export buffered, closes --metrics
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
    except OSError as exc:  # the --otlp port is taken or cannot be bound (start() binds it)
        if otlp is None or engine.otlp is not None:
            raise
        engine.stop()
        return _fail(f"--otlp {otlp[0]}:{otlp[1]}: {exc}", EXIT_SOCKET)


def _follow_index(args: argparse.Namespace) -> Any:
    """The parse-once index the history is read through (``index.live``); None with
    ``--no-cache`` or when the cache folder cannot be used (said on stderr)."""
    if getattr(args, "no_cache", False):
        return None
    from flightdeck.index.live import FollowIndex

    try:
        return FollowIndex(prices=getattr(args, "prices", None))
    except OSError as exc:  # IndexUnavailable: a symlinked or foreign cache folder, a read-only home
        print(clean(f"flightdeck tail: parse-once index not used: {exc}"), file=sys.stderr)
        return None


class _OptionError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _telemetry_options(args: argparse.Namespace) -> tuple[tuple[str, int] | None, list[Any]]:
    """``--otlp``, ``--metrics`` and ``--otlp-export``: the receiver's address and the exporters.

    Binds ``--metrics`` now, so a taken port is an error before the screen opens.
    A host beyond loopback is used only because it was typed, with a warning.
    """
    otlp_opt = getattr(args, "otlp", None)
    metrics_opt = getattr(args, "metrics", None)
    export_opt = getattr(args, "otlp_export", None)
    if not (otlp_opt or metrics_opt or export_opt):
        return None, []
    from flightdeck.ingest.otlp import DEFAULT_PORT, bind_warning, parse_bind

    otlp: tuple[str, int] | None = None
    exporters: list[Any] = []
    try:
        if otlp_opt:
            from flightdeck.ingest.otlp import OtelMissing, _messages

            host, port, loopback = parse_bind(otlp_opt, DEFAULT_PORT)
            try:
                _messages()
            except OtelMissing as exc:
                raise _OptionError(f"--otlp: {exc}", EXIT_USAGE) from None
            if not loopback:
                print(bind_warning("--otlp", host, port), file=sys.stderr)
            otlp = (host, port)
        if export_opt:
            from flightdeck.export.otlp import OtlpExporter
            from flightdeck.recorder.otel_emit import OtelMissing as EmitMissing

            try:
                exporters.append(OtlpExporter(export_opt))
            except EmitMissing as exc:
                raise _OptionError(f"--otlp-export: {exc}", EXIT_USAGE) from None
        if metrics_opt:
            from flightdeck.export.prometheus import PrometheusExporter, PrometheusMissing

            host, port, loopback = parse_bind(metrics_opt, 9464)
            try:
                prom = PrometheusExporter()
            except PrometheusMissing as exc:
                raise _OptionError(f"--metrics: {exc}", EXIT_USAGE) from None
            try:
                prom.serve(host, port)
            except OSError as exc:
                raise _OptionError(f"--metrics {host}:{port}: {exc}", EXIT_SOCKET) from None
            if not loopback:
                print(bind_warning("--metrics", host, port), file=sys.stderr)
            exporters.append(prom)
    except ValueError as exc:
        for exporter in exporters:
            exporter.close()
        raise _OptionError(str(exc), EXIT_USAGE) from None
    except _OptionError:
        for exporter in exporters:
            exporter.close()
        raise
    return otlp, exporters
