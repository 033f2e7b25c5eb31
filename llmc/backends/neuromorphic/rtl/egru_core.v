// Fixed-point EGRU neuron core of the neuromorphic backend: one unit update a
// clock, registered outputs (latency 1). Bit-exact with
// llmc/backends/neuromorphic/fixed.py (its docstring gives the equations):
// signed Q(31-FRAC).FRAC in 32 bits, products in 64 bits shifted right by
// FRAC (arithmetic), sums wrapping at 32 bits.
`timescale 1ns / 1ps
`default_nettype none

module egru_core #(
    parameter integer FRAC = 12
) (
    input  wire               clk,
    input  wire               in_valid,
    input  wire signed [31:0] c_in,     // cell before the step
    input  wire signed [31:0] a_u,      // W_u x + R_u y + b_u
    input  wire signed [31:0] a_r,      // W_r x + R_r y + b_r
    input  wire signed [31:0] a_zin,    // W_z x + b_z
    input  wire signed [31:0] a_zrec,   // R_z y + b_hz
    input  wire signed [31:0] theta,    // event threshold
    output reg                out_valid,
    output reg                event_out,
    output reg  signed [31:0] y_out,    // event value (0 when no event)
    output reg  signed [31:0] c_out     // cell after the reset by subtraction
);
    localparam signed [31:0] ONE  = 32'sd1 <<< FRAC;
    localparam signed [31:0] HALF = 32'sd1 <<< (FRAC - 1);

    // hard sigmoid: clamp((x >>> 2) + 1/2, 0, 1)
    function automatic signed [31:0] hsig(input signed [31:0] x);
        reg signed [31:0] t;
        begin
            t = (x >>> 2) + HALF;
            hsig = (t < 0) ? 32'sd0 : ((t > ONE) ? ONE : t);
        end
    endfunction

    // hard tanh: clamp(x, -1, 1)
    function automatic signed [31:0] htanh(input signed [31:0] x);
        begin
            htanh = (x < -ONE) ? -ONE : ((x > ONE) ? ONE : x);
        end
    endfunction

    // (a * b) >>> FRAC in 64 bits, low 32 bits
    function automatic signed [31:0] qmul(input signed [31:0] a, input signed [31:0] b);
        // verilator lint_off UNUSEDSIGNAL
        reg signed [63:0] p;                                // the high half wraps away
        // verilator lint_on UNUSEDSIGNAL
        begin
            p = (a * b) >>> FRAC;
            qmul = p[31:0];
        end
    endfunction

    wire signed [31:0] u     = hsig(a_u);
    wire signed [31:0] r     = hsig(a_r);
    wire signed [31:0] z     = htanh(a_zin + qmul(r, a_zrec));
    wire signed [31:0] c_new = qmul(u, c_in) + qmul(ONE - u, z);
    wire               fire  = c_new > theta;

    always @(posedge clk) begin
        out_valid <= in_valid;
        event_out <= fire;
        y_out     <= fire ? c_new : 32'sd0;
        c_out     <= fire ? c_new - theta : c_new;
    end
endmodule

`default_nettype wire
