"""Deploy the latest approved iris model and score the iris features with Batch Transform.

Run it after ``train_and_register_model`` and an approval::

    kedro run --pipelines deploy_model                                   # offline (env local)
    kedro run --pipelines deploy_model --params deploy_model.model_package=3  # pin a version
    kedro run --pipelines deploy_model --env aws                         # on SageMaker
"""

from kedro.pipeline import Node, Pipeline

from iris_aws.pipelines.deploy_model.nodes import (
    create_model,
    load_predictions,
    prepare_scoring_input,
    run_batch_transform,
    select_model_package,
    upload_scoring_input,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                select_model_package,
                "params:deploy_model",
                "iris_model_package_arn",
                name="select_model_package_node",
            ),
            Node(
                create_model,
                ["iris_model_package_arn", "params:deploy_model"],
                "iris_sagemaker_model",
                name="create_model_node",
            ),
            Node(
                prepare_scoring_input,
                ["iris_scoring_data", "params:deploy_model"],
                "iris_scoring_features",
                name="prepare_scoring_input_node",
            ),
            Node(
                upload_scoring_input,
                ["iris_scoring_features", "params:deploy_model"],
                "iris_scoring_input",
                name="upload_scoring_input_node",
            ),
            Node(
                run_batch_transform,
                [
                    "iris_model_package_arn",
                    "iris_sagemaker_model",
                    "iris_scoring_input",
                    "params:deploy_model",
                ],
                "iris_batch_transform_report",
                name="run_batch_transform_node",
            ),
            Node(
                load_predictions,
                ["iris_scoring_features", "iris_batch_transform_report"],
                "iris_predictions",
                name="load_predictions_node",
            ),
        ]
    )
