"""manifest.json: the SHA-1 of every file in the pass.

The entries of a club design are fixed, so the JSON text up to the per-pass
entry is built once; per pass one SHA-1 and two concatenations remain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ManifestPrefix:
    head: bytes  # '{"icon.png":"…",…,' — ready for the per-pass entries
    hashes: dict[str, str]


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def build_prefix(files: Iterable[tuple[str, bytes]]) -> ManifestPrefix:
    hashes = {name: sha1_hex(data) for name, data in files}
    body = ",".join(f"{json.dumps(name)}:{json.dumps(digest)}" for name, digest in hashes.items())
    return ManifestPrefix(("{" + body + ("," if body else "")).encode("utf-8"), hashes)


def finish(prefix: ManifestPrefix, files: Iterable[tuple[str, bytes]]) -> bytes:
    parts = [prefix.head]
    for name, data in files:
        parts += (b'"', name.encode("utf-8"), b'":"', hashlib.sha1(data).digest().hex().encode("ascii"), b'",')
    if len(parts) > 1:
        parts[-1] = b'"'
    parts.append(b"}")
    return b"".join(parts)


def manifest_json(files: Iterable[tuple[str, bytes]]) -> bytes:
    """The whole manifest in one go (tests and tools)."""
    return finish(build_prefix([]), list(files))
