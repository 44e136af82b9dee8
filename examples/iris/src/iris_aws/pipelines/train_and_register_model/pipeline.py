"""train → evaluate → package → register (never approve)."""

from kedro.pipeline import Node, Pipeline

from iris_aws.pipelines.train_and_register_model.nodes import (
    evaluate_classifier,
    register_classifier,
    split_dataset,
    train_classifier,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                split_dataset,
                ["iris_csv", "params:train_and_register_model.split"],
                ["registry_train", "registry_test"],
                name="split_dataset_node",
            ),
            Node(
                train_classifier,
                ["registry_train", "params:train_and_register_model.model"],
                "registry_classifier",
                name="train_classifier_node",
            ),
            Node(
                evaluate_classifier,
                ["registry_classifier", "registry_test"],
                "registry_metrics",
                name="evaluate_classifier_node",
            ),
            Node(
                register_classifier,
                [
                    "registry_classifier",
                    "registry_metrics",
                    "params:train_and_register_model.registry",
                    "params:train_and_register_model.model",
                ],
                "model_package",
                name="register_classifier_node",
            ),
        ]
    )
