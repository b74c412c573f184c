"""Incremental merging of the sweep's line files (``cells.jsonl`` and the workers' shards).

A :class:`Merger` remembers, per file, how many bytes it has folded in (whole lines only)
and, per cell key, where the line that stands for it lies (file, offset, length) with the
two fields that say whether it is finished (status, image). Asked again, it reads only
what was appended since; a whole run of 3.5 M lines is read once, not at every merge.

The files stay the truth; the index is a cache of what they said. Kept in memory by the
driver for a run and saved next to the shards (``<run>/sweep/merge-index.json``) after each
rewrite of ``cells.jsonl``, so a resumed sweep starts from it. Before trusting a file's
mark it checks that the file is the same one (device and inode), no shorter than what was
read, and that its first and last bytes up to the mark still hash the same; any mismatch
(a rewritten or truncated file, a missing one, an unreadable index) drops the whole index
and reads everything again, as a merge without an index would. A torn last line (a kill -9
mid-append) is not consumed: it is read again next time, whole or cut by the next append.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

from lycoris_eval.fileio import atomic_writer, write_atomic

INDEX_VERSION = 1
WINDOW = 4096  # bytes hashed at each end of what a mark covers
BLOCK = 8 << 20  # read size when folding in new lines

# key -> (status, image, file number, offset, length) of the line that stands for it
Entry = tuple[str, str, int, int, int]


@dataclass
class Mark:
    """How far a file was read (whole lines), and what identifies that prefix."""

    name: str  # relative to the run folder
    dev: int
    ino: int
    offset: int
    head: str
    tail: str


def _digest(handle: BinaryIO, start: int, end: int) -> str:
    handle.seek(start)
    return hashlib.sha256(handle.read(end - start)).hexdigest()


def _order_digest(order: list[str]) -> str:
    digest = hashlib.sha256()
    for key in order:
        digest.update(key.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _ends(handle: BinaryIO, offset: int) -> tuple[str, str]:
    return _digest(handle, 0, min(WINDOW, offset)), _digest(handle, max(0, offset - WINDOW), offset)


class Merger:
    """Key -> the line that stands for it, over ``files`` (read in their order), read incrementally.

    ``is_done(status, image)`` says whether a line is a finished image (its PNG exists): a
    finished line is not replaced by an unfinished one; otherwise the later line wins.
    ``bytes_read`` and ``lines_parsed`` count the work done (new lines only, after the first
    read); ``full_reads`` counts the times the index was found stale and dropped.
    """

    def __init__(self, run_dir: Path, index_path: Path, images_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.index_path = Path(index_path)
        self.images_dir = Path(images_dir)
        self.marks: list[Mark] = []
        self.entries: dict[str, Entry] = {}
        self.bytes_read = 0
        self.lines_parsed = 0
        self.full_reads = 0
        self.changed = True  # an entry moved since the last write (or nothing was written yet)
        self.written = ""  # digest of the order of the last write

    # -- the index on disk -------------------------------------------------------------
    def load(self) -> bool:
        """Start from the saved index, when there is a readable one (checked against the files at the next refresh)."""
        if not self.index_path.exists():
            return False
        try:
            data = json.loads(self.index_path.read_text(encoding="utf-8"))
            if data.get("version") != INDEX_VERSION:
                raise ValueError("another index version")
            self.marks = [Mark(**m) for m in data["files"]]
            self.written = str(data["order"])
            self.entries = {k: (str(s), str(i), int(f), int(o), int(n)) for k, (s, i, f, o, n) in data["keys"].items()}
            if any(not 0 <= e[2] < len(self.marks) for e in self.entries.values()):
                raise ValueError("a line in a file the index does not know")
            self.changed = False
            return True
        except (OSError, ValueError, KeyError, TypeError):
            self.full_reads += 1
            self._reset()
            return False

    def save(self) -> None:
        data = {
            "version": INDEX_VERSION,
            "order": self.written,
            "files": [asdict(m) for m in self.marks],
            "keys": self.entries,
        }
        write_atomic(self.index_path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    def _reset(self) -> None:
        self.marks, self.entries, self.changed, self.written = [], {}, True, ""

    # -- reading -----------------------------------------------------------------------
    def refresh(self, files: list[Path]) -> int:
        """Fold in what was appended to ``files`` since the last call; how many new lines were read."""
        if not self._marks_hold():
            self.full_reads += 1
            self._reset()
        before = self.lines_parsed
        known = {m.name: i for i, m in enumerate(self.marks)}
        for path in files:
            name = os.path.relpath(path, self.run_dir)
            if name not in known:
                if not path.exists():
                    continue
                st = path.stat()
                self.marks.append(Mark(name, st.st_dev, st.st_ino, 0, "", ""))
                known[name] = len(self.marks) - 1
            self._read_new(known[name])
        return self.lines_parsed - before

    def _marks_hold(self) -> bool:
        """Every marked file is still the one read: same inode, not shorter, same bytes at both ends of the mark."""
        for mark in self.marks:
            try:
                st = (self.run_dir / mark.name).stat()
                if (st.st_dev, st.st_ino) != (mark.dev, mark.ino) or st.st_size < mark.offset:
                    return False
                with open(self.run_dir / mark.name, "rb") as handle:
                    if _ends(handle, mark.offset) != (mark.head, mark.tail):
                        return False
            except OSError:
                return False
        return True

    def _read_new(self, number: int) -> None:
        mark = self.marks[number]
        with open(self.run_dir / mark.name, "rb") as handle:
            handle.seek(mark.offset)
            offset, rest = mark.offset, b""
            while block := handle.read(BLOCK):
                self.bytes_read += len(block)
                data = rest + block
                cut = data.rfind(b"\n") + 1
                self._parse(data[:cut], number, offset)
                offset += cut
                rest = data[cut:]
            # ``rest``: a torn last line (or one being written): left for the next read
            if offset != mark.offset:
                mark.offset = offset
                mark.head, mark.tail = _ends(handle, offset)

    def _parse(self, data: bytes, number: int, offset: int) -> None:
        start = 0
        while start < len(data):
            end = data.index(b"\n", start) + 1
            self.lines_parsed += 1
            try:
                record = json.loads(data[start:end])
            except ValueError:
                record = None
            if isinstance(record, dict) and "key" in record:
                key = str(record["key"])
                entry = (
                    str(record.get("status", "done")),
                    str(record.get("image", "")),
                    number,
                    offset + start,
                    end - start,
                )
                kept = self.entries.get(key)
                if kept is None or not self.is_done(kept) or self.is_done(entry):
                    self.entries[key] = entry
                    self.changed = True
            start = end

    # -- answers -----------------------------------------------------------------------
    def is_done(self, entry: Entry) -> bool:
        return entry[0] == "done" and bool(entry[1]) and (self.images_dir / entry[1]).is_file()

    def line(self, entry: Entry) -> bytes:
        """The bytes of an entry's line (newline included)."""
        with open(self.run_dir / self.marks[entry[2]].name, "rb") as handle:
            handle.seek(entry[3])
            return handle.read(entry[4])

    def up_to_date(self, target: Path, order: list[str]) -> bool:
        """``target`` is the file the last :meth:`write_merged` wrote for this ``order``, and nothing came since."""
        name = os.path.relpath(target, self.run_dir)
        return (
            not self.changed
            and self.written == _order_digest(order)
            and bool(self.marks)
            and self.marks[0].name == name
            and all(e[2] == 0 for e in self.entries.values())
        )

    def write_merged(self, target: Path, order: list[str]) -> list[str]:
        """Write every key's line to ``target`` atomically (write, fsync, rename), ``order`` first,
        then the others by key; point the entries at it, the new file marked as read to its end.
        The keys in the order written."""
        position = {key: i for i, key in enumerate(order)}
        keys = sorted(self.entries, key=lambda k: (position.get(k, len(position)), k))
        handles: dict[int, BinaryIO] = {}
        moved: dict[str, Entry] = {}
        try:
            with atomic_writer(target) as out:
                offset = 0
                for key in keys:
                    status, image, number, start, length = self.entries[key]
                    if number not in handles:
                        handles[number] = open(self.run_dir / self.marks[number].name, "rb")  # noqa: SIM115
                    handles[number].seek(start)
                    out.write(handles[number].read(length))
                    moved[key] = (status, image, -1, offset, length)
                    offset += length
        finally:
            for handle in handles.values():
                handle.close()
        self._repoint(target, moved)
        self.changed, self.written = False, _order_digest(order)
        return keys

    def _repoint(self, target: Path, moved: dict[str, Entry]) -> None:
        name = os.path.relpath(target, self.run_dir)
        st = target.stat()
        with open(target, "rb") as handle:
            head, tail = _ends(handle, st.st_size)
        mark = Mark(name, st.st_dev, st.st_ino, st.st_size, head, tail)
        number = next((i for i, m in enumerate(self.marks) if m.name == name), None)
        if number is None:  # nothing was read from it yet: read first from now on, as ``cells.jsonl`` is
            self.marks.insert(0, mark)
            number = 0
        else:
            self.marks[number] = mark
        self.entries = {k: (s, i, number, o, n) for k, (s, i, _f, o, n) in moved.items()}
