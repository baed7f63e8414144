"""efficiency package."""
