"""flightdeck: a flight recorder and live cockpit for autonomous AI agents.

The public names (SPEC section 4) are imported lazily so that
``import flightdeck`` stays instant and never pulls in Textual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Paused", "Recorder", "Usage", "__version__", "normalize_usage", "price"]

if TYPE_CHECKING:
    from flightdeck.core.events import Usage
    from flightdeck.core.normalize import normalize_usage
    from flightdeck.core.pricing import price
    from flightdeck.recorder.recorder import Paused, Recorder

_LAZY = {
    "Usage": "flightdeck.core.events",
    "normalize_usage": "flightdeck.core.normalize",
    "price": "flightdeck.core.pricing",
    "Recorder": "flightdeck.recorder.recorder",
    "Paused": "flightdeck.recorder.recorder",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flightdeck' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
