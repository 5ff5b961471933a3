"""Built-in augmentations (one per module)."""
