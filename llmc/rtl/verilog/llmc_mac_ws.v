// llmc_mac_ws: one processing element (PE) of a weight-stationary systolic
// array. Hand-written building block of llmc (llmc/rtl/verilog/).
//
// The PE keeps one weight (an element of B), written while `w_load` is high
// (the array's preload phase addresses one row of PEs per cycle). Every cycle
// it adds the product of the activation arriving from the left and its
// weight to the partial sum arriving from above, and passes the sum down:
//   psum_out <= psum_in + a_in * w
// The activation reaches the next PE to the right through the array's hop
// register. Operands are two's-complement IN_BITS wide; the product is exact
// and sign-extended to ACC_BITS, and the sum wraps modulo 2**ACC_BITS.
// Requires ACC_BITS >= 2*IN_BITS.
`timescale 1ns / 1ps
`default_nettype none

module llmc_mac_ws #(
    parameter IN_BITS  = 8,
    parameter ACC_BITS = 32
) (
    input  wire                clk,
    input  wire                w_load,     // take w_in as the stationary weight
    input  wire [IN_BITS-1:0]  w_in,
    input  wire [IN_BITS-1:0]  a_in,       // activation, from the left
    input  wire [ACC_BITS-1:0] psum_in,    // partial sum, from above
    output reg  [ACC_BITS-1:0] psum_out    // partial sum, downwards
);
    localparam PROD_BITS = 2 * IN_BITS;

    reg [IN_BITS-1:0] w;

    // Exact signed product, then sign-extended to the accumulator width.
    wire signed [PROD_BITS-1:0] prod = $signed(a_in) * $signed(w);
    wire        [ACC_BITS-1:0]  prod_ext;

    generate
        if (ACC_BITS > PROD_BITS) begin : g_ext
            assign prod_ext = {{(ACC_BITS - PROD_BITS){prod[PROD_BITS-1]}}, prod};
        end else begin : g_same
            assign prod_ext = prod;
        end
    endgenerate

    always @(posedge clk) begin
        if (w_load) begin
            w <= w_in;
        end
    end

    always @(posedge clk) begin
        psum_out <= psum_in + prod_ext;
    end
endmodule

`default_nettype wire
