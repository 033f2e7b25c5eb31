"""llmc.costmodel."""
