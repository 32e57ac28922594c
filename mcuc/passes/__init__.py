"""Graph passes: pure Graph -> Graph rewrites, each followed by ir.verify in the pipeline."""
