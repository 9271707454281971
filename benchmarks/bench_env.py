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
