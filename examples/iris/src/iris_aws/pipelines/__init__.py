"""The project's pipelines, found by ``find_pipelines``."""
