"""kedro-aws: run Kedro pipelines on AWS, and offline with the same code."""
