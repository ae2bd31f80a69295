"""Writing pulled chunks at their offsets into ``OUT.rgtp-partial``, renamed when done."""

from __future__ import annotations

import os
from typing import BinaryIO, Dict, Optional, Set

PARTIAL_SUFFIX = ".rgtp-partial"


class PartialFile:
    """Places each chunk at ``index * chunk_size`` in ``path + ".rgtp-partial"``.

    When the chunk size is not known up front it is learnt from the data: every chunk
    but the last is exactly ``chunk_size`` long, so as soon as two different indices
    have arrived the lower one's length is the chunk size. Until then (at most one
    chunk) the chunk is held in memory.
    """

    def __init__(self, path: "str | os.PathLike[str]", chunk_size: Optional[int] = None) -> None:
        self.path = os.fspath(path)
        self.partial = self.path + PARTIAL_SUFFIX
        self.chunk_size = chunk_size or None
        self.bytes_written = 0
        self.chunks = 0
        self._pending: Dict[int, bytes] = {}
        self._seen: Set[int] = set()
        self._f: Optional[BinaryIO] = open(self.partial, "wb")

    def write_chunk(self, index: int, data: bytes) -> None:
        if self._f is None:
            raise ValueError("PartialFile is closed")
        if index in self._seen:
            return
        self._seen.add(index)
        self.chunks += 1
        if self.chunk_size is None:
            self._pending[index] = data
            if len(self._pending) >= 2:
                lowest = min(self._pending)
                self.chunk_size = len(self._pending[lowest])
                if self.chunk_size == 0:
                    raise ValueError("a non-final chunk of zero bytes: cannot place chunks")
                pending, self._pending = self._pending, {}
                for i, d in sorted(pending.items()):
                    self._put(i, d)
            return
        self._put(index, data)

    def _put(self, index: int, data: bytes) -> None:
        assert self._f is not None and self.chunk_size is not None
        self._f.seek(index * self.chunk_size)
        self._f.write(data)
        self.bytes_written += len(data)

    def finish(self) -> str:
        """Flushes, fsyncs and renames the partial file to its final name."""
        if self._f is None:
            raise ValueError("PartialFile is closed")
        for i, d in sorted(self._pending.items()):
            # Only one chunk ever arrived: the whole exposure is that chunk (index 0).
            self._f.seek(i * (self.chunk_size or len(d)))
            self._f.write(d)
            self.bytes_written += len(d)
        self._pending.clear()
        self._f.flush()
        os.fsync(self._f.fileno())
        self._f.close()
        self._f = None
        os.replace(self.partial, self.path)
        return self.path

    def close(self) -> None:
        """Closes without renaming (the ``.rgtp-partial`` file stays for inspection)."""
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> "PartialFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
