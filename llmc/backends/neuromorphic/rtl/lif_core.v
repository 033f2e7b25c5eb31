// Fixed-point LIF neuron core of the neuromorphic backend: one unit update a
// clock, registered outputs (latency 1). Bit-exact with
// llmc/backends/neuromorphic/fixed.py (its docstring gives the equations):
// signed Q(31-FRAC).FRAC in 32 bits, products in 64 bits shifted right by
// FRAC (arithmetic), sums wrapping at 32 bits.
`timescale 1ns / 1ps
`default_nettype none

module lif_core #(
    parameter integer FRAC = 12
) (
    input  wire               clk,
    input  wire               in_valid,
    input  wire signed [31:0] v_in,        // membrane before the step
    input  wire signed [31:0] i_syn,       // synaptic input + bias of the step
    input  wire signed [31:0] beta,        // leak, Q.FRAC
    input  wire signed [31:0] threshold,   // Q.FRAC
    output reg                out_valid,
    output reg                spike,
    output reg  signed [31:0] v_out
);
    wire signed [63:0] leak_full = beta * v_in;
    // verilator lint_off UNUSEDSIGNAL
    wire signed [63:0] leak_sh   = leak_full >>> FRAC;   // the high half wraps away
    // verilator lint_on UNUSEDSIGNAL
    wire signed [31:0] v_new     = leak_sh[31:0] + i_syn;
    wire               fire      = v_new > threshold;

    always @(posedge clk) begin
        out_valid <= in_valid;
        spike     <= fire;
        v_out     <= fire ? 32'sd0 : v_new;
    end
endmodule

`default_nettype wire
