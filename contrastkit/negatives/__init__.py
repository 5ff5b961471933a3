"""Built-in negative samplers (one per module)."""
