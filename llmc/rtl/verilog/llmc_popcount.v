// llmc_popcount: the number of ones among N one-bit inputs, as a W-bit count.
// Hand-written building block of llmc (llmc/rtl/verilog/).
//
// A Hardwired Neuron (llmc.rtl.hn) wires every input whose weight has the
// same 4-bit code to one popcount: the bit plane of the activations that
// arrives this cycle is counted per code, and only then multiplied by the
// code's constant value. W must be at least clog2(N + 1).
`timescale 1ns / 1ps
`default_nettype none

module llmc_popcount #(
    parameter N = 1,
    parameter W = 1
) (
    input  wire [N-1:0] in,
    output reg  [W-1:0] count
);
    integer i;

    always @(*) begin
        count = {W{1'b0}};
        for (i = 0; i < N; i = i + 1) count = count + {{(W-1){1'b0}}, in[i]};
    end
endmodule

`default_nettype wire
