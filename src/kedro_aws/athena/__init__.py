"""Backend-neutral Athena workflows: run a query and wait for it, rewrite a SELECT into
UNLOAD/CTAS, and read results back. They speak only boto3-style calls, so they run on AWS and
on the local backend alike."""
