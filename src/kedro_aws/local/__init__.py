"""The offline backend: boto3-compatible clients that keep their state under one local root.

Every local client speaks the request and response shapes of the AWS service it stands in for,
validates its parameters against botocore's own service model (so a typo in a parameter name
fails locally exactly as it fails on AWS) and raises botocore ``ClientError`` with AWS's error
codes, as the modeled exception classes a boto3 client raises (``client.exceptions.NoSuchKey``).

Get clients through :func:`kedro_aws.clients.client`; this package holds the machinery they
share (:class:`LocalClient`) and one module per service (``s3``, ``sagemaker``, ...).

Example:
>>> from kedro_aws.clients import client
>>> s3 = client("s3", backend="local", root="/tmp/kedro-aws-doc", region="eu-west-1")
>>> s3.meta.region_name
'eu-west-1'
"""

from kedro_aws.local._client import STATE_DIR_NAME, LocalClient, service_model

__all__ = ["STATE_DIR_NAME", "LocalClient", "service_model"]
