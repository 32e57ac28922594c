"""Model-file readers: each turns a source format into a float Graph in the source layout."""
