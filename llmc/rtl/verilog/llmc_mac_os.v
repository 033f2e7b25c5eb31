// llmc_mac_os: one processing element (PE) of an output-stationary systolic
// array. Hand-written building block of llmc (llmc/rtl/verilog/).
//
// On a valid beat the PE accumulates a*b into the output it keeps:
//   first beat of a fold:  acc <= a*b          (starts a new output element)
//   other beats:           acc <= acc + a*b
// The operands and beat flags reach the next PE through the array's hop
// registers, which exist only where a neighbour reads them, so the PE itself
// has no outputs but its sum.
// Operands are two's-complement IN_BITS wide; the product is exact
// (2*IN_BITS bits) and sign-extended to ACC_BITS, and the sum wraps modulo
// 2**ACC_BITS like an int32 accumulator. Requires ACC_BITS >= 2*IN_BITS.
`timescale 1ns / 1ps
`default_nettype none

module llmc_mac_os #(
    parameter IN_BITS  = 8,
    parameter ACC_BITS = 32
) (
    input  wire                clk,
    input  wire [IN_BITS-1:0]  a_in,       // row operand
    input  wire [IN_BITS-1:0]  b_in,       // column operand
    input  wire                v_in,       // a beat is present
    input  wire                first_in,   // first beat of a fold: restart the sum
    output reg  [ACC_BITS-1:0] acc         // the output element this PE owns
);
    localparam PROD_BITS = 2 * IN_BITS;

    // Exact signed product, then sign-extended to the accumulator width.
    wire signed [PROD_BITS-1:0] prod = $signed(a_in) * $signed(b_in);
    wire        [ACC_BITS-1:0]  prod_ext;

    generate
        if (ACC_BITS > PROD_BITS) begin : g_ext
            assign prod_ext = {{(ACC_BITS - PROD_BITS){prod[PROD_BITS-1]}}, prod};
        end else begin : g_same
            assign prod_ext = prod;
        end
    endgenerate

    always @(posedge clk) begin
        if (v_in) begin
            acc <= (first_in ? {ACC_BITS{1'b0}} : acc) + prod_ext;
        end
    end
endmodule

`default_nettype wire
