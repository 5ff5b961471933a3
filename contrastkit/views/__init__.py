"""Built-in view makers (one per module)."""
