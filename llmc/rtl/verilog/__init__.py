"""Hand-written Verilog building blocks (the .v files here; see llmc.rtl.blocks)."""
