"""The pieces of a streamed training that need no S3 and no estimator: fixed chunks of rows
read from local Parquet files, the hash split, the seeded bottom-k sample, dtype narrowing.

Everything here depends on a row's *global index* (its position in the dataset: objects in
key order, rows in file order), never on how the files are cut into row groups or objects:

- a row is in the holdout when a 64-bit hash of (seed, index) falls below ``testSize`` of the
  hash range (:func:`holdout_mask`), so the holdout is the same rows whatever the chunking,
  and its share is ``testSize`` in expectation (not stratified);
- a seeded sample keeps the ``size`` rows with the smallest hash of (seed, index) under a
  salt of its own (:class:`BottomK`), a uniform sample without replacement that one pass
  builds in bounded memory (at most twice the sample between compactions) and that does not
  depend on the order the chunks arrive in;
- the rows are cut into chunks of exactly :data:`CHUNK_ROWS` global rows (the last one
  shorter), so partial_fit sees the same batches for the same rows in any file layout.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from continuum.errors import DatasetInvalid

# 65,536 rows: a chunk of 20 float64 features is 10 MiB as a matrix, small beside any pod's
# memory, and large enough that partial_fit's per-call overhead stays below 1% of its work.
CHUNK_ROWS = 65_536
# Salts keep the split, the training sample and the drift baseline's sample independent.
SPLIT_SALT = 1
SAMPLE_SALT = 2
BASELINE_SALT = 3
_MASK64 = 0xFFFF_FFFF_FFFF_FFFF
_UNIT = 2.0**-53


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = values + np.uint64(0x9E37_79B9_7F4A_7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58_476D_1CE4_E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D0_49BB_1331_11EB)
        return z ^ (z >> np.uint64(31))


def row_keys(start: int, count: int, seed: int, salt: int) -> np.ndarray:
    """A 64-bit hash per global row index ``start`` … ``start + count - 1``."""
    stream = _splitmix64(np.array([(seed << 8 | salt) & _MASK64], dtype=np.uint64))[0]
    index = np.arange(start, start + count, dtype=np.uint64)
    return _splitmix64(_splitmix64(index) ^ stream)


def holdout_mask(start: int, count: int, seed: int, test_size: float) -> np.ndarray:
    """True for the rows of the holdout among global rows ``start`` … ``start + count - 1``."""
    keys = row_keys(start, count, seed, SPLIT_SALT)
    return (keys >> np.uint64(11)).astype(np.float64) * _UNIT < test_size


class BottomK:
    """The ``size`` offered rows with the smallest keys (ties: the smaller index), in one pass.

    Offered rows are kept when not above the current threshold; once twice the sample is
    held, it is cut back to ``size`` (so memory stays at most about twice the sample's).
    """

    def __init__(self, size: int, *, narrow: bool = False) -> None:
        self.size = size
        self.narrow = narrow
        self._keys: list[np.ndarray] = []
        self._index: list[np.ndarray] = []
        self._tables: list[pa.Table] = []
        self._held = 0
        self._threshold: np.uint64 | None = None

    def offer(self, keys: np.ndarray, index: np.ndarray, table: pa.Table) -> None:
        if self._threshold is not None:
            keep = keys <= self._threshold
            keys, index = keys[keep], index[keep]
            table = table.filter(pa.array(keep))
        if not len(keys):
            return
        self._keys.append(keys)
        self._index.append(index)
        self._tables.append(narrow_strings(table) if self.narrow else table)
        self._held += len(keys)
        if self._held >= 2 * self.size:
            self._compact()

    def result(self) -> tuple[np.ndarray, pa.Table | None]:
        """The sample's global indices (ascending) and its rows in that order."""
        self._compact()
        if not self._tables:
            return np.array([], dtype=np.int64), None
        index, table = self._index[0], self._tables[0]
        order = np.argsort(index, kind="stable")
        return index[order], table.take(pa.array(order))

    def _compact(self) -> None:
        if not self._tables:
            return
        keys, index = np.concatenate(self._keys), np.concatenate(self._index)
        table = pa.concat_tables(self._tables, promote_options="permissive").unify_dictionaries()
        chosen = np.lexsort((index, keys))[: self.size]
        table = table.take(pa.array(chosen)).combine_chunks()
        self._keys, self._index = [keys[chosen]], [index[chosen]]
        self._tables = [narrow(table) if self.narrow else table]
        self._held = len(chosen)
        if self._held >= self.size:
            self._threshold = keys[chosen[-1]]


def narrow_strings(table: pa.Table) -> pa.Table:
    """String columns dictionary-encoded: a repeated category is then stored once."""
    for position, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            table = table.set_column(position, field.name, pc.dictionary_encode(table[position]))
    return table


def narrow(table: pa.Table) -> pa.Table:
    """Lossless dtype narrowing of a held sample: strings as dictionaries, 64-bit integers in
    the smallest integer type holding their range. Floats keep 64 bits (narrowing them would
    change the model's numbers)."""
    table = narrow_strings(table)
    for position, field in enumerate(table.schema):
        if pa.types.is_int64(field.type):
            table = table.set_column(position, field.name, _narrow_integers(table[position]))
    return table


def _narrow_integers(column: pa.ChunkedArray) -> pa.ChunkedArray:
    bounds = pc.min_max(column)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low is None:
        return column
    for candidate in (pa.int8(), pa.int16(), pa.int32()):
        info = np.iinfo(candidate.to_pandas_dtype())
        if info.min <= low and high <= info.max:
            return column.cast(candidate)
    return column


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Chunk:
    """``rows`` consecutive rows of the dataset from global index ``start``."""

    start: int
    table: pa.Table

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)

    def frame(self) -> pd.DataFrame:
        """The rows as pandas reads them (the files' pandas metadata: category, Int64, …),
        indexed by global row index."""
        frame = self.table.to_pandas()
        frame.index = pd.RangeIndex(self.start, self.start + self.rows)
        return frame


def data_columns(path: str) -> list[str]:
    """The columns of a Parquet file as pandas reads them (a stored index is not a column)."""
    schema = pq.read_schema(path)
    metadata = schema.pandas_metadata or {}
    index = {name for name in metadata.get("index_columns", []) if isinstance(name, str)}
    return [name for name in schema.names if name not in index]


def iter_chunks(
    paths: Iterable[str], keys: Sequence[str], columns: Sequence[str], rows: int | None = None
) -> Iterator[Chunk]:
    """The ``columns`` of every file in order, as chunks of exactly ``rows`` global rows
    (default :data:`CHUNK_ROWS`)."""
    rows = rows or CHUNK_ROWS
    schema: pa.Schema | None = None
    start = 0
    pending: list[pa.RecordBatch] = []
    held = 0
    for read in _batches(paths, keys, columns):
        schema = schema or read.schema
        batch = _conform(read, schema)
        while batch.num_rows:
            taken = min(rows - held, batch.num_rows)
            pending.append(batch.slice(0, taken))
            batch, held = batch.slice(taken), held + taken
            if held == rows:
                yield Chunk(start, pa.Table.from_batches(pending, schema=schema))
                start, pending, held = start + rows, [], 0
    if held:
        yield Chunk(start, pa.Table.from_batches(pending, schema=schema))


def _batches(
    paths: Iterable[str], keys: Sequence[str], columns: Sequence[str]
) -> Iterable[pa.RecordBatch]:
    for path, key in zip(paths, keys, strict=True):
        try:
            parquet = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise DatasetInvalid(
                None, f"object {key} is not valid parquet: {exc}; check spec.dataset.format"
            ) from exc
        missing = sorted(set(columns) - set(parquet.schema_arrow.names))
        if missing:
            raise DatasetInvalid(
                None,
                f"object {key} lacks column(s) {missing} that the first object has; every "
                "object under the prefix must share one schema",
            )
        yield from parquet.iter_batches(batch_size=CHUNK_ROWS, columns=list(columns))


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` in the first file's column types, so chunks may span files."""
    if batch.schema.equals(schema, check_metadata=False):
        return batch.replace_schema_metadata(schema.metadata)
    try:
        return batch.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise DatasetInvalid(
            None,
            f"an object's columns do not have the first object's types ({exc}); every object "
            "under the prefix must share one schema",
        ) from exc
