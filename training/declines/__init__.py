"""Decline reasons: every processor's raw codes mapped to canonical categories, and the
retry-rules engine that alone decides whether a retry is allowed."""
