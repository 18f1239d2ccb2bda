"""Recommendation: one codebase run per tier. A province service holds the recommendations of the
provinces it serves and applies their provincial review; the national service holds what the
provinces forwarded and rules on it with the ruling body. Status changes travel as signed
documents: envelopes upward, status events downward."""
