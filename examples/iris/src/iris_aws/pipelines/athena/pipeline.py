"""eth_transactions (AthenaQueryDataset, UNLOAD) → parse_transactions → partitioned Parquet."""

from kedro.pipeline import Node, Pipeline

from iris_aws.pipelines.athena.nodes import parse_transactions


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                parse_transactions,
                "eth_transactions",
                "eth_transactions_parsed",
                name="parse_transactions_node",
            ),
        ]
    )
