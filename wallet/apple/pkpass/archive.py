"""The .pkpass zip, written directly.

Every entry is stored, not deflated: PNGs are compressed already and the rest
is a few kilobytes. Entries that are the same for every pass of a club design
come first, so their local headers, data and central-directory records are
byte strings built once and reused; per pass only the last few entries and
the end record are new.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
# _LOCAL and _CENTRAL in pieces: what a name fixes, and what differs per entry.
_LOCAL_HEAD = struct.Struct("<IHHH")  # signature, version needed, flags, method
_STAMP = struct.Struct("<HHIII")  # time, date, CRC-32, compressed size, size
_NAME_LENGTHS = struct.Struct("<HH")  # name, extra field
_CENTRAL_HEAD = struct.Struct("<IHHHH")  # signature, made by, version needed, flags, method
_CENTRAL_MID = struct.Struct("<HHHHHI")  # name, extra, comment, disk, internal and external attributes
_OFFSET = struct.Struct("<I")
_VERSION_NEEDED = 20
_MADE_BY = (3 << 8) | 20  # Unix, spec 2.0
_FILE_MODE = 0o100644 << 16
_UTF8_NAMES = 1 << 11


def dos_time(moment: datetime) -> tuple[int, int]:
    """(time, date) in MS-DOS format; years before 1980 are clamped."""
    year = max(moment.year, 1980)
    return (
        (moment.hour << 11) | (moment.minute << 5) | (moment.second // 2),
        ((year - 1980) << 9) | (moment.month << 5) | moment.day,
    )


@dataclass(frozen=True)
class ZipPrefix:
    """Leading entries already laid out: local part and central records."""

    local: bytes
    central: bytes
    count: int


def _name(name: str) -> tuple[bytes, int]:
    encoded = name.encode("utf-8")
    return encoded, (0 if encoded.isascii() else _UTF8_NAMES)


@lru_cache(maxsize=64)
def _layout(name: str) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """What the entry ``name`` writes the same in every archive: its local
    header before and after the time, CRC and sizes (the name included), its
    central record's likewise up to the offset, and the name."""
    encoded, flags = _name(name)
    return (
        _LOCAL_HEAD.pack(0x04034B50, _VERSION_NEEDED, flags, 0),
        _NAME_LENGTHS.pack(len(encoded), 0) + encoded,
        _CENTRAL_HEAD.pack(0x02014B50, _MADE_BY, _VERSION_NEEDED, flags, 0),
        _CENTRAL_MID.pack(len(encoded), 0, 0, 0, 0, _FILE_MODE),
        encoded,
    )


def _entry(name: str, data: bytes, offset: int, when: tuple[int, int]) -> tuple[bytes, bytes]:
    """The entry's local header (data not included) and central record."""
    encoded, flags = _name(name)
    crc = zlib.crc32(data)
    size = len(data)
    local = _LOCAL.pack(0x04034B50, _VERSION_NEEDED, flags, 0, when[0], when[1],
                        crc, size, size, len(encoded), 0) + encoded
    central = _CENTRAL.pack(0x02014B50, _MADE_BY, _VERSION_NEEDED, flags, 0, when[0], when[1],
                            crc, size, size, len(encoded), 0, 0, 0, 0, _FILE_MODE, offset) + encoded
    return local, central


def build_prefix(files: Iterable[tuple[str, bytes]], moment: datetime) -> ZipPrefix:
    when = dos_time(moment)
    local: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    for name, data in files:
        header, record = _entry(name, data, offset, when)
        local += (header, data)
        central.append(record)
        offset += len(header) + len(data)
    return ZipPrefix(b"".join(local), b"".join(central), len(central))


class OwnEntries:
    """The pass's own entries (``names``, in that order) after a club
    design's prefix, laid out once per design: the local headers and central
    records but for the fields that differ per pass (time, CRC and sizes,
    the same 16 bytes in both, and the offsets after the first), the central
    directory's size and count, and the end record up to its offset."""

    def __init__(self, prefix: ZipPrefix, names: tuple[str, ...]) -> None:
        self.prefix = prefix
        self.names = names
        layouts = [_layout(name) for name in names]
        # Per entry: local header's head and tail (name lengths and name),
        # the bytes a local header and its data take beyond the data.
        self._local = [(head, tail, _LOCAL.size + len(encoded)) for head, tail, _c, _m, encoded in layouts]
        self._central = [(head, mid, encoded) for _h, _t, head, mid, encoded in layouts]
        self._first_offset = len(prefix.local)
        self._first_offset_packed = _OFFSET.pack(self._first_offset)
        count = prefix.count + len(names)
        central_size = len(prefix.central) + sum(_CENTRAL.size + len(encoded) for *_rest, encoded in layouts)
        self._end_head = _END.pack(0x06054B50, 0, 0, count, count, central_size, 0, 0)[:-6]

    def finish_parts(self, files: tuple[bytes, ...], crcs: tuple[int, ...], moment: datetime) -> tuple[bytes, bytes]:
        """The archive as two parts: the prefix's entries (shared, not
        copied) and the rest, ``files`` (the data of ``names``, with their
        CRC-32s) and the central directory; a WSGI server sends them one
        after the other without joining them first. The rest is joined
        once: each byte of it is copied one time."""
        time_, date = dos_time(moment)
        parts: list[bytes] = []
        central: list[bytes] = [self.prefix.central]
        offset = self._first_offset
        packed_offset = self._first_offset_packed
        for (local_head, local_tail, overhead), (central_head, central_mid, encoded), data, crc in zip(
                self._local, self._central, files, crcs):
            size = len(data)
            stamp = _STAMP.pack(time_, date, crc, size, size)
            parts += (local_head, stamp, local_tail, data)
            central += (central_head, stamp, central_mid, packed_offset, encoded)
            offset += overhead + size
            packed_offset = _OFFSET.pack(offset)
        parts += central
        parts += (self._end_head, packed_offset, b"\0\0")
        return self.prefix.local, b"".join(parts)
