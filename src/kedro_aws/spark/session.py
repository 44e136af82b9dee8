"""The Spark session of a Kedro run, configured from ``conf/<env>/spark.yml`` and ``aws.yml``.

``spark.yml`` holds plain Spark properties; kedro-aws adds defaults for a quiet local session
and, when the project reads or writes ``s3a://`` paths, the S3A settings that match ``aws.yml``
(region, profile, endpoint). Keys in ``spark.yml`` always win over what kedro-aws derives.

S3A needs the ``hadoop-aws`` jar (and the AWS SDK v2 ``bundle`` it depends on) on Spark's
classpath. EMR and Glue have them built in; elsewhere add, in ``spark.yml``::

    spark.jars.packages: org.apache.hadoop:hadoop-aws:<the Hadoop version of your Spark>

(PySpark 4.x ships Hadoop 3.4/3.5 client jars; :func:`bundled_hadoop_version` tells which.)
Maven resolves the SDK bundle transitively; this needs network access to Maven Central.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kedro_aws.config import AwsSettings

logger = logging.getLogger(__name__)

# A local session that starts fast, binds to loopback only and does not flood the console.
LOCAL_DEFAULTS: dict[str, str] = {
    "spark.master": "local[*]",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.log.level": "WARN",  # Spark >= 3.5 applies it at start-up
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# Only for local masters: a machine without a resolvable hostname still starts a local session.
LOOPBACK_DEFAULTS: dict[str, str] = {
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
}
# Hadoop S3A >= 3.4.2 reads a named profile from ~/.aws with this provider
# (org.apache.hadoop.fs.s3a.ProfileAWSCredentialsProvider, added by apache/hadoop PR #7284),
# and PySpark 4.x bundles Hadoop 3.4+/3.5 client jars.
S3A_PROFILE_PROVIDER = "org.apache.hadoop.fs.s3a.ProfileAWSCredentialsProvider"
S3A_SCHEMES = ("s3a://", "s3://", "s3n://")


def build_spark_conf(
    spark_config: Mapping[str, Any] | None,
    aws: AwsSettings | None = None,
    *,
    uses_s3: bool = False,
) -> dict[str, str]:
    """The Spark properties for a session: defaults, then S3A settings, then ``spark.yml``.

    Example:
    >>> conf = build_spark_conf({"spark.driver.memory": "2g"})
    >>> conf["spark.master"], conf["spark.driver.memory"], "spark.hadoop.fs.s3a.endpoint" in conf
    ('local[*]', '2g', False)
    """
    user = {str(k): _spark_value(v) for k, v in (spark_config or {}).items()}
    conf = dict(LOCAL_DEFAULTS)
    if user.get("spark.master", conf["spark.master"]).startswith("local"):
        conf.update(LOOPBACK_DEFAULTS)
    if uses_s3 and aws is not None:
        conf.update(s3a_conf(aws))
    conf.update(user)
    return conf


def s3a_conf(aws: AwsSettings) -> dict[str, str]:
    """Hadoop S3A properties matching the project's AWS settings.

    No credentials are written into the config: without a profile S3A uses its default chain
    (environment variables, then the instance/container role), as boto3 does.

    Example:
    >>> s3a_conf(AwsSettings(region="eu-west-1", profile="dev"))["spark.hadoop.fs.s3a.auth.profile.name"]
    'dev'
    """
    conf = {"spark.hadoop.fs.s3a.endpoint.region": aws.region}
    if aws.profile:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = S3A_PROFILE_PROVIDER
        conf["spark.hadoop.fs.s3a.auth.profile.name"] = aws.profile
    if aws.endpoint_url:
        # S3-compatible endpoints (moto, LocalStack, MinIO) serve buckets by path, not by host.
        conf["spark.hadoop.fs.s3a.endpoint"] = aws.endpoint_url
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(
            aws.endpoint_url.startswith("https://")
        ).lower()
    return conf


def uses_s3_paths(config: Any) -> bool:
    """Whether any string in a (catalog) config is an ``s3a://``/``s3://`` URI.

    Example:
    >>> uses_s3_paths({"a": {"filepath": "s3a://bucket/x"}}), uses_s3_paths({"a": "data/x"})
    (True, False)
    """
    if isinstance(config, str):
        return config.startswith(S3A_SCHEMES)
    if isinstance(config, Mapping):
        return any(uses_s3_paths(v) for v in config.values())
    if isinstance(config, Iterable) and not isinstance(config, bytes):
        return any(uses_s3_paths(v) for v in config)
    return False


def bundled_hadoop_version() -> str | None:
    """The Hadoop client version bundled with the installed PySpark (e.g. ``'3.5.0'``)."""
    try:
        import pyspark  # noqa: PLC0415
    except ImportError:
        return None
    for jar in (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"):
        match = re.fullmatch(r"hadoop-client-api-(.+)\.jar", jar.name)
        if match:
            return match.group(1)
    return None


def has_hadoop_aws(conf: Mapping[str, str]) -> bool:
    """Whether ``hadoop-aws`` is on the classpath or requested by the config."""
    requested = conf.get("spark.jars.packages", "") + "," + conf.get("spark.jars", "")
    if "hadoop-aws" in requested:
        return True
    try:
        import pyspark  # noqa: PLC0415
    except ImportError:
        return False
    return any((Path(pyspark.__file__).parent / "jars").glob("hadoop-aws-*.jar"))


def create_spark_session(conf: Mapping[str, str], app_name: str) -> Any:
    """Create (or reuse) the Spark session with ``conf``.

    The first ``getOrCreate()`` of a process fixes most of the configuration, so a session
    that already exists is reused as it is, with a warning naming the settings it ignores.
    """
    from pyspark import SparkConf  # noqa: PLC0415 - pyspark is an optional dependency
    from pyspark.sql import SparkSession  # noqa: PLC0415

    active = SparkSession.getActiveSession()
    if active is not None:
        logger.warning(
            "A Spark session already exists; kedro-aws reuses it and cannot apply spark.yml "
            "settings that only take effect at start-up (spark.master, spark.driver.*, jars)."
        )
        return active
    if any(k.startswith("spark.hadoop.fs.s3a.") for k in conf) and not has_hadoop_aws(conf):
        version = bundled_hadoop_version() or "<your Spark's Hadoop version>"
        logger.warning(
            "The project uses s3a:// paths but hadoop-aws is not on Spark's classpath: add "
            "'spark.jars.packages: org.apache.hadoop:hadoop-aws:%s' to spark.yml (EMR and Glue "
            "have it built in).",
            version,
        )
    if conf.get("spark.master", "").startswith("local") and conf.get("spark.driver.bindAddress"):
        # Spark picks its local IP before reading any property and warns when the hostname
        # resolves to loopback; point it at the same address the driver binds to.
        os.environ.setdefault("SPARK_LOCAL_IP", conf["spark.driver.bindAddress"])
    spark_conf = SparkConf().setAll(sorted(conf.items()))
    return SparkSession.builder.appName(app_name).config(conf=spark_conf).getOrCreate()


def _spark_value(value: Any) -> str:
    # YAML gives booleans and numbers; Spark wants "true"/"false" and plain strings.
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
