// llmc_drain: the output drain of one column of an output-stationary
// systolic array. Hand-written building block of llmc (llmc/rtl/verilog/).
//
// When the last beat of a fold has left the bottom PE of the column, `load`
// copies the ROWS accumulators of the column into a shift register in one
// cycle (so the PEs are free for the next fold); the register then shifts one
// element per cycle out of its bottom end: row ROWS-1 first, row 0 last, with
// `valid` high and `row` naming the element's row for ROWS cycles.
`timescale 1ns / 1ps
`default_nettype none

module llmc_drain #(
    parameter ROWS     = 4,
    parameter ACC_BITS = 32,
    parameter ROW_BITS = 2    // >= 1 and >= $clog2(ROWS)
) (
    input  wire                     clk,
    input  wire                     rst,      // synchronous, active high
    input  wire                     load,
    input  wire [ROWS*ACC_BITS-1:0] acc_in,   // row r at [r*ACC_BITS +: ACC_BITS]
    output wire                     valid,
    output wire [ROW_BITS-1:0]      row,
    output wire [ACC_BITS-1:0]      data
);
    reg [ACC_BITS-1:0] chain [0:ROWS-1];   // chain[ROWS-1] is the output end
    reg [ROW_BITS-1:0] row_q;
    reg                busy;
    integer r;

    always @(posedge clk) begin
        if (load) begin
            for (r = 0; r < ROWS; r = r + 1) chain[r] <= acc_in[r*ACC_BITS +: ACC_BITS];
        end else begin
            for (r = ROWS - 1; r > 0; r = r - 1) chain[r] <= chain[r-1];
        end
    end

    always @(posedge clk) begin
        if (rst) begin
            busy  <= 1'b0;
            row_q <= {ROW_BITS{1'b0}};
        end else if (load) begin
            busy  <= 1'b1;
            row_q <= ROWS[ROW_BITS-1:0] - 1'b1;
        end else if (busy) begin
            busy  <= (row_q != {ROW_BITS{1'b0}});
            row_q <= row_q - 1'b1;
        end
    end

    assign valid = busy;
    assign row   = row_q;
    assign data  = chain[ROWS-1];
endmodule

`default_nettype wire
