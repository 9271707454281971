"""``flightdeck report PATH... [--json] [--by DIMS] [--since T] [--until T] [--jobs N] [--prices FILE] [--no-cache]``.

``--by`` takes the breakdowns (model, provider, route, agent, run, name) and
ccusage's tables: day, week, month (UTC, by each call's own ts) and session.
Every group is kept (SPEC 5.1).

Whole logs summarised in constant memory, on every core. Bad lines are
counted and shown, never fatal: the exit status is 0 whenever the paths
could be read, 2 for a bad argument or a path that cannot be read.
Logs are read through the parse-once index (``flightdeck.index``): only bytes
not read before are parsed; ``--no-cache`` reads everything afresh.
"""

from __future__ import annotations

import argparse
import json
import sys

from flightdeck.core.report import aggregate_dims, parse_dims, parse_time, render_table, report_json
from flightdeck.core.sanitize import clean
from flightdeck.ingest.scan import ScanError, scan


def _fail(message: str) -> int:
    print(clean(f"flightdeck report: {message}"), file=sys.stderr)  # messages name paths: shown as text
    return 2


def run(args: argparse.Namespace) -> int:
    try:
        dims = parse_dims(args.by or "model")
        since = parse_time(args.since) if args.since else None
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        return _fail(str(exc))
    if args.jobs < 0:
        return _fail(f"--jobs {args.jobs}: must be 0 (one per core) or more")
    if args.prices:
        try:
            from flightdeck.core.pricing import Pricer, set_default_pricer

            # Set before the scan: worker processes are forked and inherit it.
            set_default_pricer(Pricer(args.prices))
        except (OSError, ValueError) as exc:
            return _fail(f"--prices {args.prices}: {exc}")
    from flightdeck.core.pricing import default_pricer
    from flightdeck.index.store import cache_root

    # The rates of earlier runs, kept in the cache folder: most reports then never load
    # genai-prices (0.3-0.4 s of every start, measured on a one-line Claude Code log).
    try:
        default_pricer().keep_rates(cache_root())
    except (OSError, RuntimeError):  # no home folder to keep them in: looked up as before
        pass
    from flightdeck.ingest.discover import add_documents, resolve_sources, with_plan_windows

    try:
        paths, documents = resolve_sources(args.paths)
    except ValueError as exc:
        return _fail(str(exc))
    notices: list[str] = []  # files not read (a FIFO in a folder, one that vanished)
    try:
        if args.no_cache:
            agg = scan(paths, jobs=args.jobs, since=since, until=until, by=aggregate_dims(dims), notices=notices)
        else:
            from flightdeck.index.reader import scan_indexed

            agg = scan_indexed(paths, since=since, until=until, by=aggregate_dims(dims), notices=notices,
                               prices=args.prices, progress=True, jobs=args.jobs)
    except ScanError as exc:
        return _fail(str(exc))
    add_documents(agg, documents, since=since, until=until)
    snap = with_plan_windows(agg.snapshot(), paths, blocks=agg.claude_blocks, notices=notices)
    if args.json:
        doc = report_json(snap, dims)
        doc["notices"] = notices
        sys.stdout.write(json.dumps(doc, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_table(snap, dims))
    sys.stdout.flush()
    for notice in notices:
        print(clean(f"flightdeck report: {notice}"), file=sys.stderr)
    return 0
