"""Built-in regularisers (one per module)."""
