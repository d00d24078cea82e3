"""manifest.json: the SHA-1 of every file in the pass.

The entries of a club design are fixed, so the JSON text up to the per-pass
entry is built once; per pass one SHA-1 and two concatenations remain.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ManifestPrefix:
    head: bytes  # '{"icon.png":"…",…,' — ready for the per-pass entries
    hashes: dict[str, str]
    # The head's share of a manifest's CRC-32 (for its zip entry) and
    # SHA-256 (for its signature; hashlib's, copied for each manifest):
    # most of the bytes of both.
    crc: int
    sha256: Any


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def build_prefix(files: Iterable[tuple[str, bytes]]) -> ManifestPrefix:
    hashes = {name: sha1_hex(data) for name, data in files}
    body = ",".join(f"{json.dumps(name)}:{json.dumps(digest)}" for name, digest in hashes.items())
    head = ("{" + body + ("," if body else "")).encode("utf-8")
    return ManifestPrefix(head, hashes, zlib.crc32(head), hashlib.sha256(head))


def finish(prefix: ManifestPrefix, files: Iterable[tuple[str, bytes]]) -> bytes:
    parts = [prefix.head]
    for name, data in files:
        parts += (b'"', name.encode("utf-8"), b'":"', hashlib.sha1(data).digest().hex().encode("ascii"), b'",')
    if len(parts) > 1:
        parts[-1] = b'"'
    parts.append(b"}")
    return b"".join(parts)


def finish_hashed(prefix: ManifestPrefix, files: Iterable[tuple[str, bytes]]) -> tuple[bytes, int, bytes]:
    """``finish``'s manifest with its CRC-32 and SHA-256 digest, the head's
    share of each taken once per prefix."""
    manifest = finish(prefix, files)
    tail = memoryview(manifest)[len(prefix.head):]
    digest = prefix.sha256.copy()
    digest.update(tail)
    return manifest, zlib.crc32(tail, prefix.crc), digest.digest()


def manifest_json(files: Iterable[tuple[str, bytes]]) -> bytes:
    """The whole manifest in one go (tests and tools)."""
    return finish(build_prefix([]), list(files))
