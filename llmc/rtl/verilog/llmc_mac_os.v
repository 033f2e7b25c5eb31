// llmc_mac_os: one processing element (PE) of an output-stationary systolic
// array. Hand-written building block of llmc (llmc/rtl/verilog/).
//
// Each cycle the PE passes its row operand (and the beat's control flags) to
// the right and its column operand down, one register per hop, and on a valid
// beat accumulates a*b into the output it keeps:
//   first beat of a fold:  acc <= a*b          (starts a new output element)
//   other beats:           acc <= acc + a*b
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
    input  wire                rst,        // synchronous, active high: clears the flags
    // row operand and beat flags, from the left neighbour
    input  wire [IN_BITS-1:0]  a_in,
    input  wire                v_in,       // a beat is present
    input  wire                first_in,   // first beat of a fold: restart the sum
    input  wire                last_in,    // last beat of a fold: the sum is final after it
    // column operand, from the upper neighbour
    input  wire [IN_BITS-1:0]  b_in,
    // the same, one cycle later, to the right / lower neighbour
    output reg  [IN_BITS-1:0]  a_out,
    output reg                 v_out,
    output reg                 first_out,
    output reg                 last_out,
    output reg  [IN_BITS-1:0]  b_out,
    // the output element this PE owns
    output reg  [ACC_BITS-1:0] acc
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

    // Operands move on every cycle; only the flags need a reset.
    always @(posedge clk) begin
        a_out <= a_in;
        b_out <= b_in;
    end

    always @(posedge clk) begin
        if (rst) begin
            v_out     <= 1'b0;
            first_out <= 1'b0;
            last_out  <= 1'b0;
        end else begin
            v_out     <= v_in;
            first_out <= v_in & first_in;
            last_out  <= v_in & last_in;
        end
    end

    always @(posedge clk) begin
        if (v_in) begin
            acc <= (first_in ? {ACC_BITS{1'b0}} : acc) + prod_ext;
        end
    end
endmodule

`default_nettype wire
