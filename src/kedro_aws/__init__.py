"""kedro-aws: run Kedro pipelines on AWS, and offline with the same code.

>>> import kedro_aws
>>> s3 = kedro_aws.client("s3", backend="local", root="/tmp/kedro-aws-doc-init")
>>> s3.meta.region_name
'us-east-1'
"""

from kedro_aws.clients import client

__version__ = "0.1.0"
__all__ = ["__version__", "client"]
