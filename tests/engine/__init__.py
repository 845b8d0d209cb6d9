"""Engine tests: matching, annotation, validation, compose, explain, pipeline, CLI."""
