"""The one sanitiser: a string from a log (or a file name) as harmless visible text.

Every text output of the package goes through ``clean``: the cockpit's
panels and notifications, the ``report`` table, ``prices``, error messages
naming a path. A hostile line must never move the cursor, retitle the
terminal, reorder what is shown or hide part of itself, so these become
visible escapes (``\\x1b``, ``\\u202e``):

* C0 and C1 controls and DEL (terminal escape sequences, newlines, tabs);
* every Unicode format character (category Cf): the bidi embeddings,
  overrides, isolates and marks that reorder text on screen, the zero-width
  space, joiners and no-break space (U+FEFF), invisible operators, tag
  characters, the soft hyphen;
* the line and paragraph separators (U+2028, U+2029);
* lone surrogates (only a ``surrogateescape`` decode makes them, and they
  cannot even be encoded to write to a terminal).

JSON output is not passed through here: it is data, and JSON escapes the
controls itself. Plain Python, no Textual: the report and the cockpit share it.
"""

from __future__ import annotations

import re
from typing import Final

# Cc, Cf (as of Unicode 15), Zl, Zp, Cs. tests/core/test_sanitize.py checks
# this list against unicodedata, so a newer Python's table cannot drift past it.
_UNSAFE: Final = (
    "\x00-\x1f\x7f-\x9f"
    "\u00ad"
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f"
    "\ud800-\udfff"
    "\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
_UNSAFE_RE: Final = re.compile(f"[{_UNSAFE}]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(value: object) -> str:
    """``value`` as visible text: controls and invisible characters become escapes.

    Args:
        value: a string from a log, or anything (it is ``str()``-ed first).

    Returns the text with every unsafe character replaced by ``\\xNN``,
    ``\\uNNNN`` or ``\\UNNNNNNNN``; other text (accents, CJK, emoji) is kept.
    """
    text = value if isinstance(value, str) else str(value)
    return _UNSAFE_RE.sub(_escape, text)


def clean_lines(text: str) -> str:
    """Text made of lines, each cleaned, the newlines between them kept.

    Args:
        text: output already laid out in lines (a table, a message).
    """
    return "\n".join(clean(line) for line in text.split("\n"))
