"""Sample eth.transactions: schema, determinism, partitions, Glue registration, queryable."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq

from kedro_aws.local.sample_data import COLUMNS, eth_transactions, write_eth_transactions


def test_same_seed_same_rows_and_different_seed_different_rows():
    first = eth_transactions(2_000, days=3, seed=11)
    assert first.equals(eth_transactions(2_000, days=3, seed=11))
    assert not first.equals(eth_transactions(2_000, days=3, seed=12))


def test_rows_are_shaped_like_ethereum_transactions():
    table = eth_transactions(5_000, days=2, start=dt.date(2024, 3, 1), seed=3)
    rows = table.to_pylist()
    assert len(rows) == 5_000
    assert all(len(r["hash"]) == 66 and r["hash"].startswith("0x") for r in rows)
    assert all(len(r["from_address"]) == 42 for r in rows)
    # A contract creation has no receiver and a created contract address, and only then.
    assert all(
        (r["to_address"] is None) == (r["receipt_contract_address"] is not None) for r in rows
    )
    assert all(r["receipt_gas_used"] <= r["gas"] for r in rows)
    assert all((r["max_fee_per_gas"] is None) == (r["transaction_type"] != 2) for r in rows)
    assert {r["date"] for r in rows} == {"2024-03-01", "2024-03-02"}
    assert all(r["block_timestamp"].date().isoformat() == r["date"] for r in rows)
    blocks = {}
    for r in rows:  # transaction_index counts from 0 inside each block
        blocks.setdefault(r["block_number"], []).append(r["transaction_index"])
    assert all(sorted(v) == list(range(len(v))) for v in blocks.values())


def test_written_as_hive_partitions_and_registered(root, glue, athena, run, rows):
    summary = write_eth_transactions(root, glue, rows=3_001, days=3, seed=5)
    assert summary.partitions == ("2024-01-01", "2024-01-02", "2024-01-03")
    folder = root / "aws-public-blockchain" / "v1.0" / "eth" / "transactions"
    assert sorted(p.name for p in folder.iterdir()) == [
        "date=2024-01-01",
        "date=2024-01-02",
        "date=2024-01-03",
    ]
    schema = pq.read_schema(summary.files[0])
    assert schema.names == [name for name, _, _ in COLUMNS]  # date lives in the folder name
    table = glue.get_table(DatabaseName="eth", Name="transactions")["Table"]
    assert table["PartitionKeys"] == [{"Name": "date", "Type": "string"}]
    assert table["StorageDescriptor"]["Location"] == summary.location
    counts = run(
        'SELECT "date", count(*) FROM eth.transactions GROUP BY 1 ORDER BY 1',
        QueryExecutionContext={},
    )
    assert rows(counts)[1:] == [
        ["2024-01-01", "1001"],
        ["2024-01-02", "1000"],
        ["2024-01-03", "1000"],
    ]
    # Writing again replaces the sample rather than adding to it.
    write_eth_transactions(root, glue, rows=10, days=1, seed=5)
    again = run("SELECT count(*) FROM eth.transactions", QueryExecutionContext={})
    assert rows(again) == [["_col0"], ["10"]]
