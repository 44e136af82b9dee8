"""Spark for Kedro projects: the session from ``spark.yml`` and the ``repartition_by`` decorator.

Nothing here imports PySpark at import time, so projects without Spark can install kedro-aws.
"""

from kedro_aws.spark.repartition import RepartitionError, repartition_by
from kedro_aws.spark.session import build_spark_conf, create_spark_session, s3a_conf

__all__ = [
    "RepartitionError",
    "build_spark_conf",
    "create_spark_session",
    "repartition_by",
    "s3a_conf",
]
