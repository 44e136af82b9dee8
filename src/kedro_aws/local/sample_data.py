"""Deterministic sample data: an Ethereum-transactions table like AWS Public Blockchain's.

The AWS Public Blockchain dataset keeps ``eth.transactions`` as Parquet under
``s3://aws-public-blockchain/v1.0/eth/transactions/date=YYYY-MM-DD/``; its Glue schema
(``date`` partition string; hash, nonce, transaction_index, from_address, to_address,
value double, gas, gas_price, input, receipt_* fields, block_timestamp timestamp,
block_number, block_hash, max_fee_per_gas, max_priority_fee_per_gas, transaction_type,
receipt_effective_gas_price) is reproduced column for column. The values are synthetic but
shaped like the real ones (hex hashes and addresses, 12-second blocks, EIP-1559 fees, a few
contract creations with no ``to_address``), generated with numpy and pyarrow only — no Python
loop over rows — so ten million rows take seconds. The same seed gives the same bytes::

    >>> summary = write_eth_transactions(root, glue, rows=10_000, days=3, seed=7)  # doctest: +SKIP
    >>> summary.location, summary.partitions[0]  # doctest: +SKIP
    ('s3://aws-public-blockchain/v1.0/eth/transactions/', '2024-01-01')

Files land in the local S3 layout (``<root>/<bucket>/<prefix>/date=…/part-00000.snappy.parquet``)
and the table is registered (or re-registered) in the Glue catalog with one partition per day.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

# Glue columns of eth.transactions, in the dataset's order (AWS Public Blockchain data,
# "Ethereum transactions" schema), with the pyarrow type each is written as.
COLUMNS: tuple[tuple[str, str, pa.DataType], ...] = (
    ("hash", "string", pa.string()),
    ("nonce", "bigint", pa.int64()),
    ("transaction_index", "bigint", pa.int64()),
    ("from_address", "string", pa.string()),
    ("to_address", "string", pa.string()),
    ("value", "double", pa.float64()),
    ("gas", "bigint", pa.int64()),
    ("gas_price", "bigint", pa.int64()),
    ("input", "string", pa.string()),
    ("receipt_cumulative_gas_used", "bigint", pa.int64()),
    ("receipt_gas_used", "bigint", pa.int64()),
    ("receipt_contract_address", "string", pa.string()),
    ("receipt_status", "bigint", pa.int64()),
    ("block_timestamp", "timestamp", pa.timestamp("ms")),
    ("block_number", "bigint", pa.int64()),
    ("block_hash", "string", pa.string()),
    ("max_fee_per_gas", "bigint", pa.int64()),
    ("max_priority_fee_per_gas", "bigint", pa.int64()),
    ("transaction_type", "bigint", pa.int64()),
    ("receipt_effective_gas_price", "bigint", pa.int64()),
)
PARTITION_KEY = "date"

# Each byte value's two hex characters as one uint16 (native byte order), and "0x" likewise.
_HEX_PAIRS = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint16)
_HEX_PREFIX = np.frombuffer(b"0x", dtype=np.uint16)[0]
_SECONDS_PER_BLOCK = 12  # post-merge Ethereum slot time
_FIRST_BLOCK = 18_908_895  # the first block of 2024-01-01 on mainnet; any base would do
_GWEI = 1_000_000_000
# Common ERC-20 / router call selectors, so `input` looks like real calldata.
_SELECTORS = ("a9059cbb", "095ea7b3", "23b872dd", "7ff36ab5", "38ed1739", "3593564c")


@dataclass(frozen=True)
class SampleTable:
    """Where the generated table lives and what it holds."""

    database: str
    table: str
    location: str
    rows: int
    partitions: tuple[str, ...]
    files: tuple[Path, ...]


def eth_transactions(
    rows: int, *, days: int = 7, start: dt.date = dt.date(2024, 1, 1), seed: int = 0
) -> pa.Table:
    """The rows as one Arrow table (sorted by time), plus a ``date`` column for partitioning."""
    if rows < 0 or days < 1:
        raise ValueError(f"rows must be >= 0 and days >= 1, got rows={rows}, days={days}")
    rng = np.random.default_rng(seed)
    per_day = np.full(days, rows // days, dtype=np.int64)
    per_day[: rows % days] += 1
    day_index = np.repeat(np.arange(days), per_day)
    seconds = np.sort(rng.integers(0, 86_400_000, rows)) // 1000 * 1000  # ms, whole seconds
    # Sorting the seconds inside each day: a global sort would mix days, so offset by day.
    millis = np.sort(day_index * 86_400_000 + seconds)
    start_ms = int(dt.datetime.combine(start, dt.time(), tzinfo=dt.timezone.utc).timestamp() * 1000)
    block_number = _FIRST_BLOCK + millis // (_SECONDS_PER_BLOCK * 1000)
    block_ts = start_ms + (millis // (_SECONDS_PER_BLOCK * 1000)) * _SECONDS_PER_BLOCK * 1000
    first_in_block = np.r_[0, np.flatnonzero(np.diff(block_number)) + 1]
    block_sizes = np.diff(np.r_[first_in_block, rows])
    transaction_index = np.arange(rows) - np.repeat(first_in_block, block_sizes)

    # Senders and receivers from a pool with a heavy tail (exchanges, routers…).
    pool = _hex_strings(_random_bytes(rng, max(rows // 20, 16), 20))
    pool_size = len(pool)
    sender = np.minimum(rng.pareto(0.6, rows).astype(np.int64), pool_size - 1)
    receiver = rng.integers(0, pool_size, rows)
    creation = rng.random(rows) < 0.01  # contract creations have no receiver
    transaction_type = rng.choice([0, 1, 2], rows, p=[0.12, 0.01, 0.87])
    transfer = rng.random(rows) < 0.45  # plain ETH transfers: 21000 gas, empty input

    gas = np.where(transfer, 21_000, rng.integers(40_000, 400_000, rows))
    gas_used = np.where(transfer, 21_000, (gas * rng.uniform(0.35, 1.0, rows)).astype(np.int64))
    base_fee = (rng.lognormal(np.log(25), 0.35, rows) * _GWEI).astype(np.int64)
    priority = (rng.uniform(0.01, 3, rows) * _GWEI).astype(np.int64)
    max_fee = base_fee * 2 + priority
    dynamic = transaction_type == 2
    gas_price = np.where(dynamic, base_fee + priority, base_fee + priority * 2)
    cumulative = np.cumsum(gas_used)
    block_start_total = np.repeat(
        cumulative[first_in_block] - gas_used[first_in_block], block_sizes
    )
    value = np.where(
        rng.random(rows) < 0.4, 0.0, np.round(rng.lognormal(np.log(2e17), 2.0, rows), -9)
    )
    calldata = pa.array(
        ["0x"] + [f"0x{s}{'0' * 24}{'f' * 40}{'0' * 56}1" for s in _SELECTORS], pa.string()
    )
    input_index = np.where(transfer, 0, rng.integers(1, len(_SELECTORS) + 1, rows))

    block_hashes = _hex_strings(_digest(rng, block_number, 32))
    columns: dict[str, Any] = {
        "hash": _hex_strings(_random_bytes(rng, rows, 32)),
        "nonce": np.minimum(rng.pareto(0.3, rows), 2_000_000).astype(np.int64),
        "transaction_index": transaction_index,
        "from_address": pool.take(pa.array(sender)),
        "to_address": _null_where(creation, pool.take(pa.array(receiver))),
        "value": value,
        "gas": gas,
        "gas_price": gas_price,
        "input": calldata.take(pa.array(input_index)),
        "receipt_cumulative_gas_used": cumulative - block_start_total,
        "receipt_gas_used": gas_used,
        "receipt_contract_address": _null_where(
            ~creation, _hex_strings(_random_bytes(rng, rows, 20))
        ),
        "receipt_status": (rng.random(rows) > 0.03).astype(np.int64),
        "block_timestamp": block_ts,
        "block_number": block_number,
        "block_hash": block_hashes,
        "max_fee_per_gas": pa.array(max_fee, mask=~dynamic),
        "max_priority_fee_per_gas": pa.array(priority, mask=~dynamic),
        "transaction_type": transaction_type,
        "receipt_effective_gas_price": gas_price,
    }
    arrays = [pa.array(columns[name], type=arrow_type) for name, _, arrow_type in COLUMNS]
    dates = np.array([(start + dt.timedelta(days=d)).isoformat() for d in range(days)])
    table = pa.Table.from_arrays(arrays, names=[name for name, _, _ in COLUMNS])
    return table.append_column(PARTITION_KEY, pa.array(dates[day_index], pa.string()))


def write_eth_transactions(
    root: str | Path,
    glue: Any,
    *,
    rows: int = 100_000,
    days: int = 7,
    start: dt.date = dt.date(2024, 1, 1),
    seed: int = 0,
    bucket: str = "aws-public-blockchain",
    prefix: str = "v1.0/eth/transactions",
    database: str = "eth",
    table: str = "transactions",
) -> SampleTable:
    """Write the table as Hive-partitioned Parquet under the local S3 root and register it.

    Args:
        root: Root directory of the local S3 client (``s3://bucket/key`` is ``root/bucket/key``).
        glue: A Glue client (``LocalGlueClient``) to register the table and partitions in.
        rows: Number of transactions, spread evenly over ``days``.
        days: Number of daily partitions, from ``start``.
        start: First day.
        seed: Random seed; the same arguments write the same files.
        bucket, prefix: Where the files go (``s3://bucket/prefix/date=…/``).
        database, table: Glue names; an existing table of that name is replaced.
    """
    data = eth_transactions(rows, days=days, start=start, seed=seed)
    base = Path(root) / bucket / prefix
    if base.exists():
        shutil.rmtree(base)  # a re-run replaces the sample, never mixes two of them
    location = f"s3://{bucket}/{prefix.strip('/')}/"
    dates = data.column(PARTITION_KEY).to_numpy(zero_copy_only=False)
    files, partitions = [], []
    boundaries = np.r_[0, np.flatnonzero(dates[1:] != dates[:-1]) + 1, len(dates)]
    for first, end in zip(boundaries[:-1], boundaries[1:], strict=True):
        day = str(dates[first])
        folder = base / f"{PARTITION_KEY}={day}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "part-00000.snappy.parquet"
        pq.write_table(
            data.slice(first, end - first).drop_columns([PARTITION_KEY]),
            path,
            compression="snappy",
        )
        files.append(path)
        partitions.append(day)
    _register(glue, database, table, location, partitions)
    return SampleTable(database, table, location, rows, tuple(partitions), tuple(files))


def _register(glue: Any, database: str, table: str, location: str, days: list[str]) -> None:
    try:
        glue.create_database(DatabaseInput={"Name": database})
    except glue.exceptions.AlreadyExistsException:
        pass
    try:
        glue.delete_table(DatabaseName=database, Name=table)
    except glue.exceptions.EntityNotFoundException:
        pass
    parquet = {
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
        },
    }
    descriptor = {
        "Columns": [{"Name": name, "Type": hive} for name, hive, _ in COLUMNS],
        "Location": location,
        **parquet,
    }
    glue.create_table(
        DatabaseName=database,
        TableInput={
            "Name": table,
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": descriptor,
            "PartitionKeys": [{"Name": PARTITION_KEY, "Type": "string"}],
            "Parameters": {"classification": "parquet", "EXTERNAL": "TRUE"},
        },
    )
    inputs = [
        {
            "Values": [day],
            "StorageDescriptor": {**descriptor, "Location": f"{location}{PARTITION_KEY}={day}/"},
        }
        for day in days
    ]
    for first in range(0, len(inputs), 100):  # BatchCreatePartition takes 100 at a time
        glue.batch_create_partition(
            DatabaseName=database, TableName=table, PartitionInputList=inputs[first : first + 100]
        )


def _hex_strings(raw: np.ndarray) -> pa.Array:
    """``0x``-prefixed lower-case hex strings of the rows of a ``(n, width)`` uint8 array."""
    count, width = raw.shape
    chars = np.empty((count, width + 1), dtype=np.uint16)  # two characters per element
    chars[:, 0] = _HEX_PREFIX
    chars[:, 1:] = _HEX_PAIRS[raw]  # one table look-up per byte
    row_bytes = 2 * (width + 1)
    offsets = np.arange(0, (count + 1) * row_bytes, row_bytes, dtype=np.int64)
    strings = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(chars))
    return strings.cast(pa.string())


def _random_bytes(rng: np.random.Generator, count: int, width: int) -> np.ndarray:
    return np.frombuffer(rng.bytes(count * width), dtype=np.uint8).reshape(count, width)


def _null_where(mask: np.ndarray, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(mask), pa.scalar(None, values.type), values)


def _digest(rng: np.random.Generator, keys: np.ndarray, width: int) -> np.ndarray:
    """Bytes that depend only on ``keys`` (same block number → same block hash)."""
    unique, inverse = np.unique(keys, return_inverse=True)
    return _random_bytes(rng, len(unique), width)[inverse]
