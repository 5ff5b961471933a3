"""Built-in encoders (one per module)."""
