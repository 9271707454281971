"""The environment the benchmarks run flightdeck in: bytecode compiled once, as an installed package has it.

A source tree run with ``PYTHONDONTWRITEBYTECODE`` (this sandbox sets it)
compiles every flightdeck module on every start: 0.12 s of CPU of a one-line
report (0.29 -> 0.17 s measured), about 0.7G instructions, which a
``pip install`` (bytecode compiled at install) never pays. The bytecode goes
to a folder of the benchmark's (``PYTHONPYCACHEPREFIX``), compiled before any
timing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def bytecode_env(root: Path, **extra: str) -> dict[str, str]:
    """``os.environ`` with flightdeck's bytecode kept in ``root/pycache`` (compiled now), plus ``extra``.

    Args:
        root: the benchmark's scratch folder.
        extra: more variables (e.g. ``XDG_CACHE_HOME``).
    """
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(root / "pycache"), **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    import flightdeck

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(flightdeck.__file__).parent)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    return env


def marginal_instructions(argv: list[str], n: int, *, env: dict[str, str] | None = None) -> int | None:
    """Instructions per iteration of a loop, counted by valgrind: (count at 2n - count at n) / n.

    Timings on a shared machine swing by a third from run to run; an
    instruction count is the same whatever else runs (it is a proxy: cache
    misses and branches make instructions unequal in time). ``argv`` is the
    command without its last argument, the iteration count; both runs take
    the same start-up, imports and warm-up, so the difference is the loop's.
    ``PYTHONHASHSEED`` is pinned so that dict and set work repeats. None when
    valgrind is not installed.

    Args:
        argv: the command (a Python script with its arguments), run as ``argv + [str(count)]``.
        n: the smaller iteration count.
        env: the environment (default ``os.environ``).
    """
    import re
    import shutil

    if shutil.which("valgrind") is None:
        return None
    counts = []
    for count in (n, 2 * n):
        done = subprocess.run(
            ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null", *argv, str(count)],
            env=dict(env or os.environ, PYTHONHASHSEED="0"), capture_output=True, text=True, check=True)
        found = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
        counts.append(int(found.group(1).replace(",", "")))
    return (counts[1] - counts[0]) // n
