"""Memory planning (placeholder, filled below)."""
