// llmc_skew: a DEPTH-stage delay line (a shift-register FIFO) for a
// WIDTH-bit bus. Hand-written building block of llmc (llmc/rtl/verilog/).
//
// A systolic array feeds row i (column j) of its operands through a skew line
// DEPTH = i + 1 (j + 1) deep, so that operand k of row i meets operand k of
// column j at PE (i, j) in the same cycle. The first stage doubles as the
// operand register at the array edge, which is why DEPTH >= 1.
`timescale 1ns / 1ps
`default_nettype none

module llmc_skew #(
    parameter WIDTH = 8,
    parameter DEPTH = 1
) (
    input  wire             clk,
    input  wire             rst,   // synchronous, active high: empties the line
    input  wire [WIDTH-1:0] d,
    output wire [WIDTH-1:0] q      // d delayed by DEPTH cycles
);
    reg [WIDTH-1:0] stage [0:DEPTH-1];
    integer s;

    always @(posedge clk) begin
        if (rst) begin
            for (s = 0; s < DEPTH; s = s + 1) stage[s] <= {WIDTH{1'b0}};
        end else begin
            stage[0] <= d;
            for (s = 1; s < DEPTH; s = s + 1) stage[s] <= stage[s-1];
        end
    end

    assign q = stage[DEPTH-1];
endmodule

`default_nettype wire
