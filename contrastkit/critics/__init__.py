"""Built-in critics (one per module)."""
