"""llmc.rtl."""
