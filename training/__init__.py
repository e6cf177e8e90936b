"""smartretry training side: history I/O and validation, decline reasons, simulator,
features, models, policy and evaluation."""
