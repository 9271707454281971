"""Importing flightdeck (and the Recorder) never imports an optional SDK."""

from __future__ import annotations

import json
import subprocess
import sys

OPTIONAL = ("openai", "anthropic", "litellm", "opentelemetry", "textual")

PROBE = """
import json, sys
import flightdeck
from flightdeck import Recorder
import flightdeck.recorder.instrument, flightdeck.recorder.steps, flightdeck.integrations
rec = Recorder(sys.argv[1], run="probe")
with rec.step("s"):
    rec.record(provider="openai", model="gpt-4o", usage={"prompt_tokens": 1, "completion_tokens": 1})
rec.close()
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


def test_import_flightdeck_imports_no_sdk(tmp_path: object) -> None:
    out = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path) + "/probe.jsonl"],
                         capture_output=True, text=True, check=True, timeout=60)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert "flightdeck" in loaded
    assert not loaded & set(OPTIONAL), loaded & set(OPTIONAL)
