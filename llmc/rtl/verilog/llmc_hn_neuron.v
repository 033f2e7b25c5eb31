// llmc_hn_neuron: one Metal-Embedding Hardwired Neuron's bit-plane partial sum.
// Hand-written building block of llmc (llmc/rtl/verilog/).
//
// The neuron's weights are the parameters CODES and SCALES: constants, so
// synthesis turns the loops below into wiring (Liu et al. 2025, HNLPU,
// arXiv 2508.16151): input k of the bit plane lands on the counter of its
// weight's 4-bit code (per scale group), every counter is multiplied by its
// constant value (code x the group's scale) and the products are summed. No
// weight is read at run time: the indices into CODES and SCALES are loop
// constants. This is the same datapath llmc.rtl.hn writes out wire by wire
// (one llmc_popcount per code, then the registered partial sum); this form
// keeps layers of hundreds of thousands of weights small enough to compile
// and simulate. The sum is registered on the clock edges with `en` high,
// and computed only then.
`timescale 1ns / 1ps
`default_nettype none

module llmc_hn_neuron #(
    parameter K = 1,                    // inputs
    parameter GROUP = 1,                // inputs per scale group
    parameter G = 1,                    // scale groups: ceil(K / GROUP)
    parameter PW = 2,                   // signed width of the partial sum
    parameter [4*K-1:0] CODES = 0,      // input k's two's-complement code at [4k+3:4k]
    parameter [32*G-1:0] SCALES = 0     // scale group j's (non-negative) scale at [32j+31:32j]
) (
    input  wire          clk,
    input  wire          en,            // register this plane's sum at this edge
    input  wire [K-1:0]  plane,         // the bit plane: bit b of every activation
    output reg  [PW-1:0] part           // sum over codes of (code x scale) x popcount
);
    always @(posedge clk) begin : sum_codes
        integer j, k, c, scale, acc;
        integer count [0:15];
        if (en) begin
            acc = 0;
            for (j = 0; j < G; j = j + 1) begin
                for (c = 0; c < 16; c = c + 1) count[c] = 0;
                for (k = j * GROUP; k < K && k < (j + 1) * GROUP; k = k + 1)
                    if (plane[k]) count[CODES[4*k +: 4]] = count[CODES[4*k +: 4]] + 1;
                scale = SCALES[32*j +: 32];
                for (c = 1; c < 16; c = c + 1)
                    acc = acc + (c < 8 ? c : c - 16) * scale * count[c];
            end
            part <= acc[PW-1:0];
        end
    end
endmodule

`default_nettype wire
