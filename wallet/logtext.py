"""Client text made safe for a log line.

Whatever a client sends (a device's log message, a path, an email address, a
name) may hold line breaks, which would forge a log record of its own, and
terminal escape codes, which rewrite what an operator's terminal shows.
``printable`` escapes every character that is not printable (controls, line
and paragraph separators, bidirectional overrides, lone surrogates) the way
Python writes it in a string literal, and the backslash itself, so an
escaped line cannot pass for another text either.
"""

from __future__ import annotations


def printable(value: object) -> str:
    """``str(value)`` on one line, without control or format characters."""
    text = str(value)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii") for c in text)
