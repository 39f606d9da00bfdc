"""Line-by-line reading of JSON lines reports (trufflehog, garak). Strict: a
bad line raises ParseError naming its line number."""
from __future__ import annotations

import io
import json
from typing import BinaryIO, Iterator

from ._common import HeadReader, expect, load_json_text


def first_object(head: bytes) -> dict | None:
    """The first line of the head as a JSON object, or None."""
    line = head.lstrip().split(b"\n", 1)[0]
    if not line.startswith(b"{"):
        return None
    try:
        value = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):  # bad lines are reported by parse(), not here
        return None
    return value if isinstance(value, dict) else None


def objects(reader: BinaryIO) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line."""
    if not hasattr(reader, "readline") or isinstance(reader, HeadReader):
        reader = io.BufferedReader(reader, 1024 * 1024)
    for number, line in enumerate(reader, 1):
        if not line.strip():
            continue
        value = load_json_text(line.strip(), where=f" on line {number}")
        expect(isinstance(value, dict), f"line {number} is not a JSON object")
        yield number, value
