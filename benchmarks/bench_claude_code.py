"""Claude Code session logs: flightdeck against ccusage, on the same files.

Generates realistic ``~/.claude/projects/<project>/<session>.jsonl`` logs
(summary, user and tool-result lines with text, assistant lines repeated once
per content block with the same ``message.id``/``requestId``, written as
Claude Code 2.x streams them: the earlier blocks carry the usage as it stood
(``output_tokens`` still small), the last one the final count (``--streamed``
is the share of responses written so; 0 repeats the final usage on each),
``<synthetic>`` placeholders, 5-minute and 1-hour cache writes, several
models), keeping an independent exact total (Decimal, list rates written out
below) of what they cost. Then, in the same run:

- ``flightdeck report --json --no-cache`` (one process, all cores) and
  ``ccusage claude daily --json --offline`` (ccusage@20.0.24: its native
  binary from the npx cache, run directly, and ``npx`` itself, or the copy in
  ``--ccusage-dir``), in ``--rounds`` interleaved rounds: wall and CPU time
  (min and median), peak memory (max RSS of the child), total cost;
  ``flightdeck tail --once --json`` once;
- the ratios to ccusage (per round, min and median), and whether each total
  equals the independent one to the cent;
- totals per model and UTC day from flightdeck and from ``ccusage claude
  daily --breakdown``, beside the exact ones, each disagreement printed.

    python benchmarks/bench_claude_code.py --lines 1000000 [--rounds 3] [--split] [--keep DIR [--reuse]]

``--keep DIR --reuse`` runs again on logs generated earlier in DIR (their
exact total is saved next to them), which saves the generation time.

Disagreements with ccusage found so far (printed by this script): a
Claude Code response whose later, larger copy is flagged ``isSidechain``
while its first is not (seen with the flag drawn per line instead of per
response: ccusage then under-counted 1.2 %, 353.19 vs 357.52 USD on 20,000
lines); ``o4-mini`` priced at half its list rate;
a resumed Gemini CLI legacy session counted in its ``.json`` and again in
its ``.jsonl`` copy; a multi-step OpenCode message read from its last step
only (``message.tokens``), with OpenCode's own cost.

ccusage prices every cache write at the 5-minute rate (its pricing data has
no 1-hour rate), so the comparison with it runs on logs without 1-hour
writes (``--one-hour 0``, the default for the comparison); flightdeck's 1-hour
pricing is checked against the independent total in a second, smaller set.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_env import bytecode_env

# $/MTok list rates: input, output, cache read, 5m write, 1h write (Anthropic's price page).
RATES: dict[str, tuple[str, str, str, str, str]] = {
    "claude-sonnet-4-5-20250929": ("3", "15", "0.30", "3.75", "6"),
    "claude-opus-4-1-20250805": ("15", "75", "1.50", "18.75", "30"),
    "claude-haiku-4-5-20251001": ("1", "5", "0.10", "1.25", "2"),
    "claude-3-5-haiku-20241022": ("0.80", "4", "0.08", "1", "1.6"),
}
MODEL_WEIGHTS = (0.6, 0.1, 0.2, 0.1)
MILLION = Decimal(1_000_000)
WORDS = ("the", "file", "function", "test", "error", "fix", "refactor", "module", "import", "return",
         "value", "config", "path", "build", "check", "update", "class", "data", "line", "output")


def _text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


class Generator:
    def __init__(self, root: Path, seed: int, one_hour: float, streamed: float = 1.0) -> None:
        self.root = root
        self.rng = random.Random(seed)
        self.one_hour = one_hour
        self.streamed = streamed
        self.sidechain = 0.05  # share of responses flagged isSidechain (all their lines)
        self.expected = Decimal(0)
        # (model, UTC day) -> exact cost and output tokens; output the first copies carry (what keeping them counts).
        self.by_day: dict[str, list[str]] = {}
        self.first_output = 0
        self.final_output = 0
        self.messages = 0
        self.lines = 0
        self.bytes = 0

    def _base(self, session: str, cwd: str, ts: float, kind: str) -> dict[str, object]:
        return {
            "parentUuid": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "isSidechain": self.rng.random() < self.sidechain,
            "userType": "external",
            "cwd": cwd,
            "sessionId": session,
            "version": "2.0.14",
            "gitBranch": "main",
            "type": kind,
            "uuid": str(uuid.UUID(int=self.rng.getrandbits(128))),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z",
        }

    def _usage(self, model: str, prompt_so_far: int) -> tuple[dict[str, object], Decimal]:
        rng = self.rng
        write = rng.randint(0, 4000)
        w1h = write if rng.random() < self.one_hour else 0
        read = min(prompt_so_far, 150_000)
        inp = rng.randint(1, 60)
        out = rng.randint(5, 2500)
        usage = {
            "input_tokens": inp,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write - w1h, "ephemeral_1h_input_tokens": w1h},
            "output_tokens": out,
            "service_tier": "standard",
        }
        r_in, r_out, r_read, r_5m, r_1h = (Decimal(x) for x in RATES[model])
        cost = (inp * r_in + out * r_out + read * r_read + (write - w1h) * r_5m + w1h * r_1h) / MILLION
        return usage, cost

    def _emit(self, fh, row: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
        data = json.dumps(row, separators=(",", ":")).encode() + b"\n"
        fh.write(data)
        self.lines += 1
        self.bytes += len(data)

    def session(self, project: str, start: float, target_lines: int) -> None:
        rng = self.rng
        session = str(uuid.UUID(int=rng.getrandbits(128)))
        cwd = "/home/dev/" + project
        folder = self.root / "projects" / ("-home-dev-" + project)
        folder.mkdir(parents=True, exist_ok=True)
        ts = start
        prompt = 0
        model = rng.choices(list(RATES), MODEL_WEIGHTS)[0]
        with open(folder / f"{session}.jsonl", "wb") as fh:
            if rng.random() < 0.3:
                self._emit(fh, {"type": "summary", "summary": _text(rng, 6), "leafUuid": str(uuid.uuid4())})
            written = 0
            while written < target_lines:
                ts += rng.uniform(1, 40)
                user = self._base(session, cwd, ts, "user")
                user["message"] = {"role": "user", "content": _text(rng, rng.randint(5, 120))}
                self._emit(fh, user)
                written += 1
                for _turn in range(rng.randint(1, 4)):
                    ts += rng.uniform(2, 30)
                    if rng.random() < 0.01:
                        syn = self._base(session, cwd, ts, "assistant")
                        syn["message"] = {"id": "msg_" + uuid.uuid4().hex[:24], "model": "<synthetic>",
                                          "role": "assistant", "type": "message",
                                          "content": [{"type": "text", "text": "No response requested."}],
                                          "usage": {"input_tokens": 0, "output_tokens": 0,
                                                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}
                        self._emit(fh, syn)
                        written += 1
                    usage, cost = self._usage(model, prompt)
                    prompt += int(usage["cache_creation_input_tokens"]) + int(usage["input_tokens"])  # type: ignore[call-overload]
                    self.expected += cost
                    self.messages += 1
                    key = f"{model} {time.strftime('%Y-%m-%d', time.gmtime(ts))}"
                    cost_out = self.by_day.setdefault(key, ["0", "0"])
                    cost_out[0] = str(Decimal(cost_out[0]) + cost)
                    cost_out[1] = str(int(cost_out[1]) + int(usage["output_tokens"]))  # type: ignore[call-overload]
                    msg_id = "msg_01" + uuid.UUID(int=rng.getrandbits(128)).hex[:22]
                    req_id = "req_011C" + uuid.UUID(int=rng.getrandbits(128)).hex[:20]
                    blocks = rng.choice((("text",), ("thinking", "text"), ("text", "tool_use"),
                                         ("thinking", "text", "tool_use")))
                    streams = rng.random() < self.streamed
                    # A sub-agent's response is flagged on every line of it (Claude Code writes the flag
                    # per conversation, not per line).
                    side = rng.random() < self.sidechain
                    self.final_output += int(usage["output_tokens"])  # type: ignore[call-overload]
                    for i, block in enumerate(blocks):  # one line per content block, each with the usage so far
                        copy = usage
                        if streams and i < len(blocks) - 1:  # written before the response ended
                            copy = dict(usage, output_tokens=min(int(usage["output_tokens"]),  # type: ignore[call-overload]
                                                                 rng.randint(1, 12) * (i + 1)))
                        if i == 0:
                            self.first_output += int(copy["output_tokens"])  # type: ignore[call-overload]
                        row = self._base(session, cwd, ts, "assistant")
                        row["isSidechain"] = side
                        content = ({"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:20], "name": "Bash",
                                    "input": {"command": "ls " + _text(rng, 3)}} if block == "tool_use"
                                   else {"type": block, block: _text(rng, rng.randint(10, 80))})
                        row["message"] = {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                                          "content": [content], "stop_reason": None, "stop_sequence": None,
                                          "usage": copy}
                        row["requestId"] = req_id
                        self._emit(fh, row)
                        written += 1
                    if blocks[-1] == "tool_use":
                        res = self._base(session, cwd, ts + 0.5, "user")
                        res["message"] = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x",
                                                                        "content": _text(rng, rng.randint(5, 60))}]}
                        res["toolUseResult"] = {"stdout": _text(rng, 20), "stderr": "", "interrupted": False}
                        self._emit(fh, res)
                        written += 1
                    if prompt > 150_000:  # compaction: a new context
                        prompt = 0

    def generate(self, total_lines: int) -> None:
        start = time.time() - 6 * 86400
        i = 0
        while self.lines < total_lines:
            project = f"proj{i % 12}"
            size = min(self.rng.randint(50, 3000), total_lines - self.lines)
            self.session(project, start + self.rng.uniform(0, 5 * 86400), size)
            i += 1


def _run_with_rss(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run in a child; wall time and its peak RSS via wait4 (exact for that child alone)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    # Read the pipes on threads so a large output never blocks the child.
    import threading

    chunks: dict[str, bytes] = {}

    def drain(name: str, stream) -> None:  # type: ignore[no-untyped-def]
        chunks[name] = stream.read()

    threads = [threading.Thread(target=drain, args=("out", proc.stdout)),
               threading.Thread(target=drain, args=("err", proc.stderr))]
    for t in threads:
        t.start()
    _pid, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    for t in threads:
        t.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} failed ({proc.returncode}): {chunks.get('err', b'').decode()[-800:]}")
    LAST_CPU[0] = ru.ru_utime + ru.ru_stime  # the child and the children it reaped (report's workers)
    return wall, ru.ru_maxrss * 1024, chunks.get("out", b"").decode()


LAST_CPU = [0.0]  # CPU seconds of the last _run_with_rss


def _ccusage_binary() -> Path | None:
    """ccusage 20's native binary in the npx cache, if ``npx ccusage@20.0.24`` ran here before.

    Run directly, ccusage's time is its own: through npx it also pays npx's
    package resolution (1.2-1.4 s measured here), which would flatter flightdeck.
    """
    cache = Path.home() / ".npm" / "_npx"
    for pkg in sorted(cache.glob("*/node_modules/ccusage/package.json")):
        try:
            if json.loads(pkg.read_text()).get("version") != "20.0.24":
                continue
        except (OSError, ValueError):
            continue
        for binary in sorted(pkg.parents[1].glob("@ccusage/ccusage-*/bin/ccusage")):
            if os.access(binary, os.X_OK):
                return binary
    return None


def _ccusage_cmd(ccusage_dir: Path | None) -> list[str] | None:
    if ccusage_dir is not None:
        local = ccusage_dir / "node_modules" / ".bin" / "ccusage"
        if local.exists():
            return [str(local)]
    if shutil.which("npx"):
        return ["npx", "--yes", "ccusage@20.0.24"]
    return None


def _compare_days(projects: Path, exact: dict[str, list[str]], ccusage: dict[str, tuple[Decimal, int]]) -> None:
    """Per model and UTC day: exact, flightdeck, ccusage; every disagreement printed."""
    import calendar

    from flightdeck.ingest.scan import scan

    days = sorted({key.split(" ")[1] for key in exact})
    mine: dict[str, tuple[Decimal, int]] = {}
    for day in days:
        lo = calendar.timegm(time.strptime(day, "%Y-%m-%d"))
        snap = scan([projects], since=lo, until=lo + 86400, by=("model",)).snapshot()
        for g in snap.breakdowns.get("model", ()):
            mine[f"{g.key} {day}"] = (g.figures.cost_usd, g.figures.tokens.output_tokens)
    cent = Decimal("0.01")
    print(f"{'model, UTC day':40} {'exact USD':>14} {'flightdeck':>14} {'ccusage':>14} {'out exact':>10} "
          f"{'out fd':>10} {'out cc':>10}")
    bad = 0
    for key in sorted(exact):
        usd, out = Decimal(exact[key][0]), int(exact[key][1])
        fd = mine.get(key, (Decimal(0), 0))
        cc = ccusage.get(key)
        print(f"{key:40} {usd.quantize(cent):>14} {fd[0].quantize(cent):>14} "
              f"{cc[0].quantize(cent) if cc else '-':>14} {out:>10} {fd[1]:>10} {cc[1] if cc else '-':>10}")
        if fd != (usd, out):
            bad += 1
            print(f"  DISAGREE flightdeck: {fd} vs exact {(usd, out)}")
        if cc is not None and (cc[0].quantize(cent) != usd.quantize(cent) or cc[1] != out):
            print(f"  ccusage differs: {cc[0]} USD, {cc[1]} output tokens vs exact {usd}, {out}")
    print(f"per model and day: flightdeck {'equals the exact figures' if not bad else f'differs on {bad} rows'}")


def _agents_home(home: Path) -> None:
    """Codex (o4-mini), a resumed Gemini CLI legacy session, a multi-step OpenCode message: the known traps."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.ingest.formats.agent_logs import (
        gemini_meta,
        gemini_reply,
        gemini_tokens,
        gemini_user,
        jsonl,
        oc_assistant,
        oc_database,
        oc_insert,
        oc_step,
        oc_tokens,
    )
    from tests.ingest.formats.codex_logs import Session

    t0 = time.time() - 2 * 86400
    sess = Session("cx-o4", t0, model="o4-mini")
    for k in range(5):
        sess.call(20_000 + k, 12_000, 900, 400, repeats=2)
    day = home / ".codex" / "sessions" / time.strftime("%Y/%m/%d", time.gmtime(t0))
    day.mkdir(parents=True)
    (day / "rollout-x-cx-o4.jsonl").write_bytes(sess.data())
    chats = home / ".gemini" / "tmp" / "9f2c1a" / "chats"
    chats.mkdir(parents=True)
    old = [gemini_user("u1", t0), gemini_reply("g1", t0 + 2, gemini_tokens(30_000, 500, 20_000, 200)),
           gemini_user("u2", t0 + 60), gemini_reply("g2", t0 + 62, gemini_tokens(40_000, 700, 30_000, 0))]
    (chats / "session-old.json").write_text(json.dumps({**gemini_meta("gm-old", t0), "messages": old}))
    # Resuming copies the legacy conversation into the .jsonl, record by record, then appends the new turn.
    (chats / "session-old.jsonl").write_bytes(jsonl([gemini_meta("gm-old", t0), *old,
                                                     gemini_user("u3", t0 + 900),
                                                     gemini_reply("g3", t0 + 901, gemini_tokens(50_000, 800,
                                                                                                40_000, 0))]))
    data = home / ".local" / "share" / "opencode"
    data.mkdir(parents=True)
    con = oc_database(data / "opencode.db")
    created = int((t0 + 3600) * 1000)
    steps = [oc_step(f"p{i}", "m1", "oc-1", oc_tokens(2000 * (i + 1), 300, 50, 10_000, 1000 if i == 0 else 0), 0.02)
             for i in range(3)]
    oc_insert(con, oc_assistant("m1", "oc-1", created, steps[-1]["tokens"], 0.06), steps, 1)
    con.close()


def _compare_agents(root: Path, cc: list[str] | None) -> None:
    """Codex, Gemini CLI and OpenCode in one fake home: flightdeck and ccusage per model."""
    home = root / "agents-home"
    shutil.rmtree(home, ignore_errors=True)
    _agents_home(home)
    env = dict(os.environ, HOME=str(home), TZ="UTC")
    for name in ("CLAUDE_CONFIG_DIR", "CODEX_HOME", "GEMINI_CLI_HOME", "GEMINI_DATA_DIR", "OPENCODE_DATA_DIR",
                 "XDG_DATA_HOME"):
        env.pop(name, None)
    argv = [sys.executable, "-m", "flightdeck", "report", "--json", "--no-cache", "--by", "model"]
    wall, rss, out = _run_with_rss(argv, env)
    mine = {row["key"]: (Decimal(row["cost_usd"]), row["tokens"]["output_tokens"], row["events"])
            for row in json.loads(out)["by"]["model"]}
    theirs: dict[str, tuple[Decimal, int]] = {}
    if cc is not None:
        _w, _r, out = _run_with_rss([*cc, "daily", "--json", "--offline", "--breakdown"], env)
        for day in json.loads(out)["daily"]:
            for row in day.get("modelBreakdowns", []):
                cost, outs = theirs.get(row["modelName"], (Decimal(0), 0))
                theirs[row["modelName"]] = (cost + Decimal(repr(row["cost"])), outs + row["outputTokens"])
    print(f"\nother agents (flightdeck report, {wall:.2f} s, {rss / 1e6:.0f} MB):")
    print(f"{'model':24} {'calls':>6} {'flightdeck USD':>16} {'ccusage USD':>14} {'out fd':>8} {'out cc':>8}")
    for model in sorted(set(mine) | set(theirs)):
        fd = mine.get(model, (Decimal(0), 0, 0))
        cu = theirs.get(model)
        print(f"{model:24} {fd[2]:>6} {fd[0]:>16f} {cu[0] if cu else '-':>14} {fd[1]:>8} {cu[1] if cu else '-':>8}")


def _split(projects: Path, rounds: int, env: dict[str, str] | None = None) -> None:
    """Where a cold report's time goes, in a child process: each stage alone, CPU seconds, min of ``rounds``.

    Stages add up: reading the files into lines; + decoding each line as the
    reader does (one typed decode of every line; the one-field decode of a
    line of another shape); + the whole reader (holding copies, pricing, building Events);
    + the Aggregator (the whole ``scan``). Start-up (imports, loading the
    price data) is measured apart, as the first ``scan`` of a one-line log,
    with the rates kept in the cache as ``flightdeck report`` keeps them
    (``Pricer.keep_rates``: filled by the report runs before).
    """
    code = f"""
import gc, glob, os, tempfile, time
t0 = time.process_time()
from flightdeck.ingest.scan import expand, open_log, read_batches, scan
from flightdeck.ingest.formats.claude_code import ClaudeCode, _cc_fast_decoder, _cc_kind_decoder
from flightdeck.core.pricing import default_pricer
from flightdeck.index.store import cache_root
default_pricer().keep_rates(cache_root())
t_import = time.process_time() - t0
one = tempfile.mkdtemp()
line = b""
for path in expand([{str(projects)!r}]):
    with open(path, "rb") as f:
        line = next((x for x in f if b'"assistant"' in x), b"")
    if line:
        break
with open(os.path.join(one, "s.jsonl"), "wb") as f:
    f.write(line)
t0 = time.process_time(); scan([one], jobs=1); t_prices = time.process_time() - t0
files = expand([{str(projects)!r}])
gc.disable()
def read():
    for p in files:
        with open_log(p) as f:
            for batch in read_batches(f):
                for line in batch:
                    pass
def decode():
    for p in files:
        with open_log(p) as f:
            for batch in read_batches(f):
                for line in batch:
                    try:
                        _cc_fast_decoder.decode(line)
                    except ValueError:  # msgspec's errors: the reader's second look
                        try:
                            _cc_kind_decoder.decode(line)
                        except ValueError:
                            pass
def reader():
    for p in files:
        cc = ClaudeCode()
        parse = cc.parse
        with open_log(p) as f:
            for batch in read_batches(f):
                for line in batch:
                    parse(line)
        cc.flush()
def whole():
    scan([{str(projects)!r}], jobs=1).snapshot()
out = [t_import, t_prices]
for stage in (read, decode, reader, whole):
    best = float("inf")
    for _ in range({rounds}):
        t0 = time.process_time(); stage(); best = min(best, time.process_time() - t0)
    out.append(best)
print(*out)
"""
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    imp, prices, read, decode, reader, whole = (float(x) for x in got.stdout.split())
    print(f"\nwhere a cold one-process report's CPU goes (min of {rounds}; each stage includes the one before):")
    print(f"  start-up: imports {imp:.2f} s, the first scan (the price data: kept rates or genai-prices) "
          f"{prices:.2f} s")
    print(f"  read the files into lines {read:.2f} s; + decode every line {decode - read:.2f} s; "
          f"+ the reader's logic {reader - decode:.2f} s; + the aggregator {whole - reader:.2f} s; scan {whole:.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--one-hour", type=float, default=0.0, help="share of messages with 1h cache writes (ccusage run)")
    ap.add_argument("--ccusage-dir", type=Path, default=Path("/tmp/ccusage-bench"),
                    help="a folder where `npm install ccusage@20.0.24` was run")
    ap.add_argument("--keep", type=Path, help="generate here and keep the logs")
    ap.add_argument("--reuse", action="store_true", help="with --keep: use the logs already there")
    ap.add_argument("--sidechain", type=float, default=0.05, help="share of responses flagged isSidechain")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (min and median are printed)")
    ap.add_argument("--split", action="store_true", help="also print where a one-process report's CPU goes")
    ap.add_argument("--streamed", type=float, default=1.0,
                    help="share of multi-block responses written with growing output_tokens (Claude Code 2.x)")
    args = ap.parse_args()

    root = args.keep or Path(tempfile.mkdtemp(prefix="fd-cc-"))
    saved = root / "expected.json"
    try:
        gen = Generator(root, args.seed, args.one_hour, args.streamed)
        gen.sidechain = args.sidechain
        wanted = {"lines": args.lines, "seed": args.seed, "one_hour": args.one_hour, "streamed": args.streamed,
                  "sidechain": args.sidechain}
        if args.reuse and saved.exists() and json.loads(saved.read_text())["args"] == wanted:
            info = json.loads(saved.read_text())
            gen.lines, gen.bytes, gen.messages = info["lines"], info["bytes"], info["messages"]
            gen.expected = Decimal(info["expected"])
            gen.by_day, gen.first_output, gen.final_output = info["by_day"], info["first"], info["final"]
            print(f"reusing {gen.lines} lines in {root}")
        else:
            shutil.rmtree(root / "projects", ignore_errors=True)
            t0 = time.perf_counter()
            gen.generate(args.lines)
            print(f"generated {gen.lines} lines in {time.perf_counter() - t0:.1f}s")
            if args.keep is not None:
                saved.write_text(json.dumps({"args": wanted, "lines": gen.lines, "bytes": gen.bytes,
                                             "messages": gen.messages, "expected": str(gen.expected),
                                             "by_day": gen.by_day, "first": gen.first_output,
                                             "final": gen.final_output}))
        print(f"{gen.lines} lines, {gen.bytes / 1e6:.0f} MB, {gen.messages} priced responses; "
              f"independent exact total {gen.expected} USD")
        if gen.final_output:
            print(f"output tokens: {gen.final_output} in the last copies, {gen.first_output} in the first "
                  f"(keeping the first copy under-counts output by {1 - gen.first_output / gen.final_output:.0%})")
        projects = str(root / "projects")
        py = sys.executable

        cc = _ccusage_cmd(args.ccusage_dir)
        native = _ccusage_binary()
        # HOME too: ccusage 20 reads every agent CLI it knows in the home folder.
        cc_env = dict(os.environ, CLAUDE_CONFIG_DIR=str(root), HOME=str(root), TZ="UTC")
        cc_args = ["claude", "daily", "--json", "--offline", "--breakdown"]
        fd_env = bytecode_env(root)
        runs: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "flightdeck report (1 process)": ([py, "-m", "flightdeck", "report", projects, "--json", "--no-cache",
                                               "--jobs", "1"], fd_env),
            "flightdeck report (all cores)": ([py, "-m", "flightdeck", "report", projects, "--json", "--no-cache"],
                                              fd_env),
        }
        if native is not None:
            runs["ccusage 20.0.24 (native binary)"] = ([str(native), *cc_args], cc_env)
        if cc is not None:
            runs["ccusage 20.0.24 (npx)" if cc[0] == "npx" else "ccusage 20.0.24"] = ([*cc, *cc_args], cc_env)
        if cc is None and native is None:
            print("ccusage not available (no npx, no --ccusage-dir): comparing with the independent total only")
        # Interleaved rounds (the machine may be shared): every tool once per round, min and median kept.
        timings: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runs}
        results: dict[str, tuple[float, int, Decimal]] = {}
        cc_days: dict[str, tuple[Decimal, int]] = {}
        for _round in range(args.rounds):
            for name, (cmd, env) in runs.items():
                wall, rss, out = _run_with_rss(cmd, env)
                timings[name].append((wall, LAST_CPU[0], rss))
                doc = json.loads(out)
                if name.startswith("flightdeck"):
                    results[name] = (wall, rss, Decimal(doc["cost_usd"]))
                else:
                    results[name] = (wall, rss, Decimal(repr(doc["totals"]["totalCost"])))
                    for day in doc["daily"]:
                        for row in day.get("modelBreakdowns", []):
                            cc_days[f"{row['modelName']} {day['date']}"] = (Decimal(repr(row["cost"])),
                                                                           row["outputTokens"])
        wall, rss, out = _run_with_rss([py, "-m", "flightdeck", "tail", projects, "--once", "--json"], fd_env)
        results["flightdeck tail --once"] = (wall, rss, Decimal(json.loads(out)["cost_usd"]))
        timings["flightdeck tail --once"] = [(wall, LAST_CPU[0], rss)]

        cent = Decimal("0.01")
        print(f"{args.rounds} interleaved rounds; wall and CPU (all processes) in s, min / median; peak RSS of the "
              f"fastest round")
        print(f"{'tool':34} {'wall min':>8} {'median':>7} {'CPU min':>8} {'median':>7} {'peak MB':>8} "
              f"{'total USD':>22}  equals the exact total")
        for name, (_wall, _rss, total) in results.items():
            if name.startswith("flightdeck"):  # Decimal end to end: every digit
                same = "to the digit" if total == gen.expected else "NO"
            else:  # ccusage sums floats: the cent is what it can promise
                same = "to the cent" if total.quantize(cent) == gen.expected.quantize(cent) else "NO"
            t = timings[name]
            walls, cpus = [x[0] for x in t], [x[1] for x in t]
            fastest = min(t)
            print(f"{name:34} {min(walls):8.2f} {statistics.median(walls):7.2f} {min(cpus):8.2f} "
                  f"{statistics.median(cpus):7.2f} {fastest[2] / 1e6:8.0f} {total:22f}  {same}")
        for base_name in [n for n in timings if n.startswith("ccusage")]:
            base = timings[base_name]
            for name, t in timings.items():
                if name.startswith("flightdeck report"):
                    # Ratios within each round, then their min and median: both tools met the same load.
                    ratios = [a[0] / b[0] for a, b in zip(t, base)]
                    cpu_ratios = [a[1] / b[1] for a, b in zip(t, base)]
                    print(f"{name} / {base_name}: wall {min(ratios):.2f}x / {statistics.median(ratios):.2f}x, "
                          f"CPU {min(cpu_ratios):.2f}x / {statistics.median(cpu_ratios):.2f}x (min / median), "
                          f"memory {min(t)[2] / min(base)[2]:.2f}x")

        if args.split:
            _split(Path(projects), args.rounds, fd_env)
        _compare_days(Path(projects), gen.by_day, cc_days)
        _compare_agents(root, cc)

        # 1h cache writes: priced at the 1h rate, checked against the independent total.
        shutil.rmtree(root / "one-hour", ignore_errors=True)
        one_h = Generator(root / "one-hour", args.seed + 1, 0.5)
        one_h.generate(min(args.lines, 20_000))
        one_h_projects = str(root / "one-hour" / "projects")
        _w, _r, out = _run_with_rss([py, "-m", "flightdeck", "tail", one_h_projects, "--once", "--json"])
        got = Decimal(json.loads(out)["cost_usd"])
        print(f"1h cache writes: flightdeck {got} vs exact {one_h.expected}: "
              f"{'equal to the digit' if got == one_h.expected else 'DIFFERENT'}")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
