"""Built-in datasets (one per module)."""
