"""The ``flightdeck`` command line (SPEC section 3).

Only argument parsing lives here; each subcommand is a ``run(args) -> int``
in ``flightdeck.commands.<name>``, imported when chosen so that
``flightdeck report`` never pays for importing Textual.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from flightdeck import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flightdeck",
        description="A flight recorder and live cockpit for autonomous AI agents.",
    )
    parser.add_argument("--version", action="version", version=f"flightdeck {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    tail = sub.add_parser("tail", help="live monitor on JSONL files, folders or a UNIX socket")
    tail.add_argument("paths", nargs="*", metavar="PATH",
                      help="files, or folders (every *.jsonl below); none: every agent log found for this user")
    tail.add_argument("--socket", metavar="PATH", help="listen on a UNIX socket for agents")
    tail.add_argument("--json", action="store_true", help="no screen: one JSON snapshot line per interval")
    tail.add_argument("--once", action="store_true", help="with --json: print the current aggregates and exit")
    tail.add_argument("--interval", type=float, default=1.0, metavar="S",
                      help="seconds between --json snapshots (default 1)")
    tail.add_argument("--rules", metavar="FILE", help="guardrail rules (TOML)")
    tail.add_argument("--budget", metavar="USD/WINDOW", help="a spend budget to show, e.g. 2.00/10m")
    tail.add_argument("--theme", metavar="NAME", help="colour theme (see themes/)")
    tail.add_argument("--prices", metavar="FILE", help="your own rates (TOML), over the pricing database")
    tail.add_argument("--otlp", metavar="HOST:PORT",
                      help="also receive OTLP/HTTP traces and logs (default host 127.0.0.1, port 4318)")
    tail.add_argument("--metrics", metavar="HOST:PORT",
                      help="serve Prometheus text on /metrics (default host 127.0.0.1)")
    tail.add_argument("--otlp-export", metavar="URL",
                      help="send every call to an OTLP/HTTP endpoint as a GenAI span and metrics")
    tail.add_argument("--no-cache", action="store_true",
                      help="read the history afresh instead of through the parse-once index")

    report = sub.add_parser("report", help="summarise whole logs, in constant memory")
    report.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or folders; none: every agent log found for this user (Claude Code, Codex, ...)")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.add_argument("--by", default="model", metavar="DIM",
                        help="group the table by model, provider, route, agent, run or name, or show"
                             " ccusage's day, week, month, session or (Claude's 5-hour) block table (comma separated)")
    report.add_argument("--since", metavar="TIME",
                        help="only events at or after TIME (ISO 8601, epoch seconds, or 2h/30m/7d ago)")
    report.add_argument("--until", metavar="TIME", help="only events before TIME")
    report.add_argument("--jobs", type=int, default=0, metavar="N", help="processes to use (default: one per core)")
    report.add_argument("--prices", metavar="FILE", help="your own rates (TOML), over the pricing database")
    report.add_argument("--no-cache", action="store_true",
                        help="read everything afresh instead of through the parse-once index")

    prices = sub.add_parser("prices", help="what a model costs, and where the rate came from")
    prices.add_argument("model")
    prices.add_argument("--provider", metavar="P")
    prices.add_argument("--route", choices=("direct", "proxy", "local"), default=None)
    prices.add_argument("--at", metavar="TIME", help="the rate in force at TIME (default now)")
    prices.add_argument("--service-tier", metavar="TIER", default=None,
                        help="the rates of a service tier: flex, priority, batch... (default standard)")
    prices.add_argument("--speed", metavar="SPEED", default=None, help="Anthropic's speed: fast")
    prices.add_argument("--prices", metavar="FILE", help="your own rates (TOML), over the pricing database")
    prices.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", help="the monitor beside a simulated agent, nothing to set up")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--out", metavar="FILE", help="keep the agent's log here")
    demo.add_argument("--headless", action="store_true",
                      help="run only the agent (watch it with `flightdeck tail FILE`)")
    demo.add_argument("--speed", type=float, default=1.0, help="run simulated time this many times faster")
    demo.add_argument("--steps", type=int, default=0, help="stop the agent after N loop iterations (0: run until quit)")
    demo.add_argument("--theme", metavar="NAME")
    demo.add_argument("--agents", type=int, default=3, metavar="N",
                      help="simulated agents side by side, each with its own early incident (1-3, default 3)")
    statusline = sub.add_parser(
        "statusline", help="Claude Code's statusLine command: a short line, and its rate limits recorded")
    statusline.add_argument("--no-record", action="store_true",
                            help="only print the line; keep no rate-limit figures")
    _control_parsers(sub)
    return parser


def _control_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """pause / resume / downgrade / restore: one command each, run by ``commands.control``."""
    helps = {
        "pause": "pause an agent (before its next model call) and wait for its ack",
        "resume": "resume a paused agent and wait for its ack",
        "downgrade": "step an agent's models down (its ladder, or --to A=B) and wait for its ack",
        "restore": "return an agent to the models it asked for and wait for its ack",
    }
    for name, text in helps.items():
        p = sub.add_parser(name, help=text)
        p.set_defaults(command="control", control_cmd=name)
        p.add_argument("path", nargs="?", metavar="PATH",
                       help="the agent's telemetry file (the command goes to PATH.control)")
        p.add_argument("--socket", metavar="PATH", help="send through the monitor serving this socket")
        who = p.add_mutually_exclusive_group()
        who.add_argument("--run", metavar="R", help="only the agents of this run")
        who.add_argument("--agent", metavar="A", help="only this agent")
        p.add_argument("--wait", type=float, default=5.0, metavar="S",
                       help="seconds to wait for the ack (default 5); exit 4 without one")
        p.add_argument("--reason", metavar="TEXT", help="why: shown by the agent and the cockpit")
        if name == "downgrade":
            p.add_argument("--to", action="append", default=[], metavar="A=B",
                           help="use model B where the agent uses A (repeatable); default: one rung down its ladder")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module = importlib.import_module(f"flightdeck.commands.{args.command}")
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `flightdeck report x | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
