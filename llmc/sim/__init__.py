"""llmc.sim."""
