"""Built-in objectives (one per module)."""
