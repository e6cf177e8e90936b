"""The Dask path: validate, build features and train on a cluster (docs/scale.md)."""
