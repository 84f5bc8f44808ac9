"""The export's two file formats, written from a stream of rows in bounded chunks.

CSV comes out as byte chunks (for an HTTP response or a file). Parquet is written with
pyarrow, one row group per chunk, into a file object (a temporary file the API then
streams): its footer comes last, so it cannot be sent while it is being made.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from neocloud.metering.export import COLUMNS, NAMES, Kind

CSV_CHUNK_ROWS = 2_000
ROW_GROUP_ROWS = 100_000
MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}

ARROW_TYPES: dict[Kind, Any] = {
    "string": pa.string(),
    "timestamp": pa.timestamp("s", tz="UTC"),
    "decimal": pa.decimal128(38, 9),
    "integer": pa.int64(),
}
SCHEMA = pa.schema(
    [pa.field(c.name, ARROW_TYPES[c.kind]) for c in COLUMNS],
    metadata={"description": "neocloud usage export, FOCUS 1.x columns (docs/metering.md)"},
)


def chunks(rows: Iterable[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def csv_chunks(rows: Iterable[tuple[Any, ...]]) -> Iterator[bytes]:
    """The header, then the rows, `CSV_CHUNK_ROWS` to a chunk, as UTF-8 bytes: empty cells
    for nulls, times as `2026-11-25T11:00:00Z`, decimals in plain notation."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(NAMES)
    yield buffer.getvalue().encode()
    for batch in chunks(rows, CSV_CHUNK_ROWS):
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([_text(v) for v in row] for row in batch)
        yield buffer.getvalue().encode()


def write_csv(rows: Iterable[tuple[Any, ...]], sink: IO[bytes]) -> None:
    for chunk in csv_chunks(rows):
        sink.write(chunk)


def write_parquet(rows: Iterable[tuple[Any, ...]], sink: IO[bytes]) -> None:
    """Rows into Parquet, a row group per `ROW_GROUP_ROWS` rows: memory stays at one group.
    An empty export is a valid file with the columns and no rows."""
    with pq.ParquetWriter(sink, SCHEMA, compression="zstd") as writer:
        wrote = False
        for batch in chunks(rows, ROW_GROUP_ROWS):
            columns = list(zip(*batch, strict=True))
            arrays = [
                pa.array(values, type=field.type)
                for values, field in zip(columns, SCHEMA, strict=True)
            ]
            writer.write_table(pa.Table.from_arrays(arrays, schema=SCHEMA))
            wrote = True
        if not wrote:
            writer.write_table(SCHEMA.empty_table())
