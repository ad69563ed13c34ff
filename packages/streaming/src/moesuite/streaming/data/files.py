r"""User streams from CSV or ARFF files: ``--data PATH --target COL``.

Column types are fixed up front (ARFF: from its ``@attribute`` lines; CSV: a column is numeric
when its first :data:`INFER_ROWS` non-missing values all parse as numbers, categorical
otherwise). Missing values (empty, ``?``, ``NA``, ``nan``) are left out of ``x`` (river's
convention for a missing feature). A value of a new type later in the stream (text in a numeric
column) raises ``ValueError`` naming the file, line, column and value: the models would
otherwise learn from silently corrupted input. Labels are kept as the strings in the file.

Examples:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "toy.csv"
    >>> _ = p.write_text("a,colour,label\n1.5,red,yes\n2,,no\n")
    >>> list(read_table(p, target="label"))
    [({'a': 1.5, 'colour': 'red'}, 'yes'), ({'a': 2.0}, 'no')]
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moesuite.streaming.data.stream import NamedStream

__all__ = ["read_table", "INFER_ROWS", "MISSING"]

#: rows used to decide whether a CSV column is numeric
INFER_ROWS = 200
#: cell values read as missing
MISSING = frozenset({"", "?", "na", "nan", "null", "none"})


def _is_missing(v: str) -> bool:
    return v.strip().lower() in MISSING


def _is_number(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _parse_arff_header(
    path: Path, lines: Iterator[tuple[int, str]]
) -> tuple[list[str], dict[str, bool]]:
    names: list[str] = []
    numeric: dict[str, bool] = {}
    for lineno, raw in lines:
        line = raw.strip()
        if not line or line.startswith("%"):
            continue
        low = line.lower()
        if low.startswith("@relation"):
            continue
        if low.startswith("@attribute"):
            rest = line[len("@attribute") :].strip()
            if rest.startswith(("'", '"')):
                q = rest[0]
                end = rest.index(q, 1)
                name, kind = rest[1:end], rest[end + 1 :].strip()
            else:
                name, _, kind = rest.partition(" ")
                kind = kind.strip()
            if not kind:
                raise ValueError(f"{path}, line {lineno}: @attribute {name!r} has no type.")
            names.append(name)
            numeric[name] = kind.lower().split()[0] in ("numeric", "real", "integer")
            continue
        if low.startswith("@data"):
            return names, numeric
        raise ValueError(
            f"{path}, line {lineno}: expected @relation, @attribute or @data, got {line[:40]!r}."
        )
    raise ValueError(f"{path}: no @data section (expected an ARFF file).")


def read_table(path: str | Path, target: str) -> NamedStream:
    """A :class:`~moesuite.streaming.data.stream.NamedStream` over a CSV or ARFF file.

    The header and the first rows are read and checked now (so a bad file fails before any
    run directory is made); the rest is read lazily while the stream is iterated.

    Args:
        path: ``.csv`` (header row, comma-separated) or ``.arff`` file.
        target: name of the label column.

    Raises:
        FileNotFoundError: no such file.
        ValueError: ``target`` is not a column (the message lists the columns), no data rows,
            ragged rows, or a value of a new type mid-stream.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--data {path}: no such file (expected a CSV or ARFF file).")
    is_arff = path.suffix.lower() == ".arff"
    with path.open(newline="") as fh:
        if is_arff:
            lines = enumerate(fh, start=1)
            names, numeric = _parse_arff_header(path, lines)
        else:
            header = next(csv.reader(fh), None)
            if header is None:
                raise ValueError(
                    f"--data {path}: the file is empty (expected a header row and data rows)."
                )
            names = [h.strip() for h in header]
        if target not in names:
            raise ValueError(f"--target {target!r} is not a column of {path}; columns are {names}.")
        n_rows = _count_rows(path, is_arff)
        if n_rows == 0:
            raise ValueError(
                f"--data {path}: no data rows (an empty stream); expected at least one instance."
            )
    stream_iter = _Rows(path, names, target, numeric if is_arff else None)
    stream_iter.check_head()
    return NamedStream(path.stem, stream_iter, n_rows, [], "file")


def _count_rows(path: Path, is_arff: bool) -> int:
    n = 0
    with path.open(newline="") as fh:
        if is_arff:
            for line in fh:
                if line.strip().lower().startswith("@data"):
                    break
            return sum(1 for line in fh if line.strip() and not line.lstrip().startswith("%"))
        reader = csv.reader(fh)
        next(reader, None)
        for row in reader:
            n += bool(row and any(c.strip() for c in row))
    return n


class _Rows:
    """Iterates the data rows of one file as ``(x, y)``; re-iterable (reopens the file)."""

    def __init__(self, path: Path, names: list[str], target: str, numeric: dict[str, bool] | None):
        self.path, self.names, self.target = path, names, target
        self.numeric = numeric  # None: infer from the first rows (CSV)

    def _raw_rows(self) -> Iterator[tuple[int, list[str]]]:
        with self.path.open(newline="") as fh:
            if self.numeric is not None and self.path.suffix.lower() == ".arff":
                lineno = 0
                for lineno, line in enumerate(fh, start=1):  # noqa: B007
                    if line.strip().lower().startswith("@data"):
                        break
                body = (
                    (i, line)
                    for i, line in enumerate(fh, start=lineno + 1)
                    if line.strip() and not line.lstrip().startswith("%")
                )
                for i, line in body:
                    yield i, next(csv.reader([line], skipinitialspace=True, quotechar="'"))
                return
            reader = csv.reader(fh)
            next(reader, None)
            for row in reader:
                if row and any(c.strip() for c in row):
                    yield reader.line_num, row

    def _infer(self) -> dict[str, bool]:
        seen: dict[str, list[str]] = {n: [] for n in self.names}
        for lineno, row in itertools.islice(self._raw_rows(), INFER_ROWS):
            self._check_width(lineno, row)
            for n, v in zip(self.names, row, strict=True):
                if not _is_missing(v):
                    seen[n].append(v)
        return {n: bool(vals) and all(_is_number(v) for v in vals) for n, vals in seen.items()}

    def _check_width(self, lineno: int, row: list[str]) -> None:
        if len(row) != len(self.names):
            raise ValueError(
                f"{self.path}, line {lineno}: {len(row)} values but the header has "
                f"{len(self.names)} columns."
            )

    def check_head(self) -> None:
        """Fix the column types and parse the first rows (errors surface before any work)."""
        if self.numeric is None:
            self.numeric = self._infer()
        for _ in itertools.islice(iter(self), INFER_ROWS):
            pass

    def __iter__(self) -> Iterator[tuple[dict, Any]]:
        if self.numeric is None:
            self.numeric = self._infer()
        numeric, target = self.numeric, self.target
        for lineno, row in self._raw_rows():
            self._check_width(lineno, row)
            x: dict[str, Any] = {}
            y = None
            for n, v in zip(self.names, row, strict=True):
                v = v.strip()
                if n == target:
                    if _is_missing(v):
                        raise ValueError(
                            f"{self.path}, line {lineno}: the target {target!r} is missing."
                        )
                    y = v
                    continue
                if _is_missing(v):
                    continue
                if numeric[n]:
                    try:
                        x[n] = float(v)
                    except ValueError:
                        raise ValueError(
                            f"{self.path}, line {lineno}, column {n!r}: expected a number "
                            "(the column was numeric "
                            f"until here), got {v!r}; fix the value or mark it missing with '?'."
                        ) from None
                else:
                    x[n] = v
            yield x, y
