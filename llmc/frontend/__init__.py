"""llmc.frontend."""
