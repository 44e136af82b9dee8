"""Model-server code packed into the SageMaker model archive."""
