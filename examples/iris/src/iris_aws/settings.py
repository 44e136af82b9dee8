"""Project settings. See https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

from kedro.config import OmegaConfigLoader

from kedro_aws.resolvers import DATE_RESOLVERS

# kedro-aws's hooks (Spark session, parameters outside nodes) come from its `kedro.hooks` entry
# point, so nothing is listed here.
HOOKS = ()

CONFIG_LOADER_CLASS = OmegaConfigLoader
# Setting CONFIG_LOADER_ARGS replaces Kedro's defaults, so base_env/default_run_env are restated.
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Dynamic globals: ${kedro_aws.yesterday:%Y-%m-%d,Asia/Singapore} and friends. They must be
    # registered here (not in a hook): globals are resolved while the loader is being built.
    "custom_resolvers": {**DATE_RESOLVERS},
}
