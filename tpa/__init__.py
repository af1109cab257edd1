"""The `tpa` command: a thin skin over the sampling, survey and reports libraries."""
