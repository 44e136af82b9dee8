"""iris-aws: the kedro-aws reference project."""
