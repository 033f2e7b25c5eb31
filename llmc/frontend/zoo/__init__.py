"""llmc.frontend.zoo."""
