"""The offline default pipeline."""

from kedro.pipeline import Node, Pipeline

from iris_aws.pipelines.pyspark_iris.nodes import (
    evaluate_model,
    parse_iris,
    split_data,
    train_model,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(parse_iris, "iris_raw", "iris_parsed", name="parse_iris_node"),
            Node(
                split_data,
                ["iris_parsed", "params:split"],
                ["iris_train", "iris_test"],
                name="split_data_node",
            ),
            Node(
                train_model,
                ["iris_train", "params:model"],
                "iris_classifier",
                name="train_model_node",
            ),
            Node(
                evaluate_model,
                ["iris_classifier", "iris_test"],
                "iris_metrics",
                name="evaluate_model_node",
            ),
        ]
    )
