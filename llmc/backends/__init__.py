"""llmc.backends."""
