"""llmc.ir."""
