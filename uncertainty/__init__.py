"""uncertainty package."""
