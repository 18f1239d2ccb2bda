"""`make bench`: the load and totals benchmark (see bench/__main__.py)."""
