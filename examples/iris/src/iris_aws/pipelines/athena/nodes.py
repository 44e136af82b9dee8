"""Nodes of the athena pipeline."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from kedro_aws.params import param
from kedro_aws.spark import repartition_by

WEI_PER_GWEI = 1e9


# The partition scheme comes from globals.yml (through parameters), like the catalog's
# partitionBy, so Spark writes one task's rows per year=/month= directory.
@repartition_by(param("athena.repartition_columns"))
def parse_transactions(eth_transactions: DataFrame) -> DataFrame:
    """Type the query's rows and derive fee columns.

    Args:
        eth_transactions: What the Athena query returned (``year``/``month`` derived in SQL).

    Returns:
        One row per successful transaction, with its fee in ETH and gas price in gwei.
    """
    return (
        eth_transactions.where(F.col("receipt_status") == 1)
        .withColumn("gas_price_gwei", F.col("gas_price") / F.lit(WEI_PER_GWEI))
        .withColumn(
            "fee_eth",
            F.col("receipt_gas_used") * F.col("receipt_effective_gas_price") / F.lit(1e18),
        )
        .drop("receipt_status")
    )
