"""A decode step as one RTL design: the units of every layer and a controller
sequencing them (llmc.rtl.hn_layer's DecodeSpec).

The units are the ones llmc.rtl generates alone: RMSNorm (hn_norm), the
Metal-Embedding projections (hn, in the compact form: one llmc_hn_neuron
per neuron with its codes as parameters, the same function cycle for cycle
as the wire-by-wire form, so that a layer of hundreds of thousands of
weights compiles and simulates in minutes), the attention buffer + softmax
unit (hn_attn) and the SwiGLU block (hn_ffn). The controller is an FSM over a
fixed list of steps (`steps`), one program counter `pc`:

* a unit step raises the unit's `start` for one cycle (pc on the step, not
  yet waiting), then waits until the unit's `done`; q, k and v start together;
* a pass step walks an index i over a vector, one element per cycle, through
  the integer glue the graph has between units (its requantizations, RoPE,
  the residual adds), writing the result registers the next unit reads.

So a unit step takes its unit's cycles + 2 edges, a pass its length, and one
final edge raises `done` (llmc.rtl.hn_sim.decode_schedule). The attention
buffers are filled beforehand through `fill` (the KV cache of the prompt, as
a DMA would); the design's input is the token's embedding row (or, for a
layer alone, its input residual), its output the LM head's int32 logits (or
the layer's residual), and each layer's SwiGLU output h for inspection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from llmc.rtl.design import Design
from llmc.rtl.hn import OUT_BITS, generate_me
from llmc.rtl.hn_attn import generate_attn
from llmc.rtl.hn_ffn import ffn_top, generate_ffn
from llmc.rtl.hn_iexp import slit
from llmc.rtl.hn_layer import DecodeSpec, LayerSpec, Requant
from llmc.rtl.hn_norm import generate_norm

COMPACT = True  # the hardwired neurons as llmc_hn_neuron (llmc.rtl.hn's compact form)


@dataclass(frozen=True)
class Step:
    """One controller step: a unit run (`done` its done expression) or a pass
    over `n` elements (`body` its per-element register writes)."""

    name: str
    kind: str                  # "unit" or "pass"
    cycles: int = 0            # a unit's own cycles (HnLayer/NormSpec/... .cycles())
    done: str = ""
    n: int = 0
    body: tuple[str, ...] = ()


def _bits(n: int) -> int:
    return max(1, (n - 1).bit_length())


def _sx(expr: str, frm: int, to: int) -> str:
    """Sign-extend the `frm`-bit expression to a signed `to`-bit one."""
    return expr if frm == to else f"$signed({{{{{to - frm}{{{expr}[{frm - 1}]}}}}, {expr}}})"


def _table(name: str, values: tuple[int, ...], index: str, ib: int) -> list[str]:
    """A per-channel constant as a case over the index (a ROM)."""
    lines = [f"    reg signed [63:0] {name};", "    always @(*) begin",
             f"        case ({index})"]
    lines += [f"            {ib}'d{i}: {name} = {slit(v)};" for i, v in enumerate(values)]
    lines += [f"            default: {name} = 64'sd0;", "        endcase", "    end"]
    return lines


def _requant(name: str, x: str, x_bits: int, rq: Requant, ib: int) -> list[str]:
    """`name` (rq.bits, signed) = saturate(rshift(x * mult, shift)), mult by channel i."""
    lines = []
    if len(rq.mult) > 1:
        lines += _table(f"{name}_m", rq.mult, "i", ib)
        mult = f"{name}_m"
    else:
        mult = slit(rq.mult[0])
    lines.append(f"    wire signed [63:0] {name}_p = {_sx(x, x_bits, 64)} * {mult};")
    shifted = f"{name}_p" if rq.shift == 0 else \
        f"({name}_p + (64'sd1 <<< {rq.shift - 1})) >>> {rq.shift}"
    top, w = rq.top, rq.bits
    lines += [f"    wire signed [63:0] {name}_w = {shifted};",
              f"    wire signed [{w - 1}:0] {name} = ({name}_w > {slit(top)}) ? {w}'sd{top} : "
              f"(({name}_w < {slit(-top)}) ? -{w}'sd{top} : {name}_w[{w - 1}:0]);"]
    return lines


def _rope_rom(name: str, table: np.ndarray, sb: int, db: int) -> list[str]:
    """table[pos][d] (int16) as a case over {pos_r, d}."""
    lines = [f"    reg signed [15:0] {name};", "    always @(*) begin",
             "        case ({pos_r, rd})"]
    for p in range(table.shape[0]):
        for d in range(table.shape[1]):
            v = int(table[p, d])
            lit = f"-16'sd{-v}" if v < 0 else f"16'sd{v}"
            lines.append(f"            {sb + db}'d{(p << db) + d}: {name} = {lit};")
    lines += [f"            default: {name} = 16'sd0;", "        endcase", "    end"]
    return lines


def _layer_glue(l: int, la: LayerSpec, spec: DecodeSpec, ib: int, roms: dict[int, int]
                ) -> tuple[list[str], list[tuple[str, int]], list[Step]]:
    """Wires, units and steps of layer l."""
    a = la.attn
    c, nq, nk = la.width, la.q.n, la.k.n
    src, src_bits = ("x", spec.in_bits) if l == 0 else ("res", 32)
    L = [f"    // ---- {la.name}",
         f"    wire n1_done_{l}, q_done_{l}, k_done_{l}, v_done_{l}, att_done_{l}, "
         f"o_done_{l}, n2_done_{l}, ffn_done_{l};",
         f"    wire [{c * 8 - 1}:0] n1_y_{l}, n2_y_{l};",
         f"    wire [{nq * OUT_BITS - 1}:0] q_y_{l};",
         f"    wire [{nk * OUT_BITS - 1}:0] k_y_{l}, v_y_{l};",
         f"    wire [{nq * 8 - 1}:0] att_y_{l};",
         f"    wire [{c * OUT_BITS - 1}:0] o_y_{l}, ffn_y_{l};"]
    go = {s: f"go_{s}_{l}" for s in ("n1", "qkv", "att", "o", "n2", "ffn")}
    L += [f"    wire {w};" for w in go.values()]
    L += [f"    {la.attn_norm.top} u_n1_{l} (.clk(clk), .rst(rst), .start({go['n1']}), "
          f".x({src}), .done(n1_done_{l}), .y(n1_y_{l}));"]
    for p, layer in (("q", la.q), ("k", la.k), ("v", la.v)):
        L.append(f"    {layer.top('me', COMPACT)} u_{p}_{l} (.clk(clk), .rst(rst), .start({go['qkv']}), "
                 f".x(n1_y_{l}), .done({p}_done_{l}), .y({p}_y_{l}));")
    L += [f"    {a.top} u_att_{l} (.clk(clk), .rst(rst), .fill(fill), .kc(kc_{l}), "
          f".vc(vc_{l}), .start({go['att']}), .pos(pos_r), .q(qr), .k_new(kr), .v_new(v8), "
          f".done(att_done_{l}), .y(att_y_{l}));",
          f"    {la.o.top('me', COMPACT)} u_o_{l} (.clk(clk), .rst(rst), .start({go['o']}), "
          f".x(att_y_{l}), .done(o_done_{l}), .y(o_y_{l}));",
          f"    {la.ffn_norm.top} u_n2_{l} (.clk(clk), .rst(rst), .start({go['n2']}), "
          f".x(res), .done(n2_done_{l}), .y(n2_y_{l}));",
          f"    {ffn_top(la.ffn, COMPACT)} u_ffn_{l} (.clk(clk), .rst(rst), .start({go['ffn']}), "
          f".x(n2_y_{l}), .done(ffn_done_{l}), .h(h_{l}), .y(ffn_y_{l}));"]
    # pass 1: q, k, v requantized to int8
    for p, rq in (("q", la.q_rq), ("k", la.k_rq), ("v", la.v_rq)):
        L.append(f"    wire signed [31:0] {p}a_{l} = {p}_y_{l}[{OUT_BITS}*i +: {OUT_BITS}];")
        L += _requant(f"{p}8_{l}", f"{p}a_{l}", 32, rq, ib)
    guard = f"if (i < {ib}'d{nk}) " if nk < (1 << ib) else ""
    qkv = (f"q8[8*i +: 8] <= q8_{l};",
           f"{guard}begin k8[8*i +: 8] <= k8_{l}; v8[8*i +: 8] <= v8_{l}; end")
    # pass 2: RoPE of q and k
    rom = roms[l]
    L += [f"    wire signed [31:0] qt_{l} = {_sx('rx_q', 8, 32)} * {_sx(f'rcos_{rom}', 16, 32)}"
          f" + {_sx('rr_q', 8, 32)} * {_sx(f'rsin_{rom}', 16, 32)};",
          f"    wire signed [31:0] kt_{l} = {_sx('rx_k', 8, 32)} * {_sx(f'rcos_{rom}', 16, 32)}"
          f" + {_sx('rr_k', 8, 32)} * {_sx(f'rsin_{rom}', 16, 32)};"]
    L += _requant(f"qr_{l}", f"qt_{l}", 32, la.rope.q_rq, ib)
    L += _requant(f"kr_{l}", f"kt_{l}", 32, la.rope.k_rq, ib)
    rope = (f"qr[8*i +: 8] <= qr_{l};", f"{guard}kr[8*i +: 8] <= kr_{l};")
    # passes 3 and 4: the residual adds
    L += [f"    wire signed [{src_bits - 1}:0] sa_{l} = {src}[{src_bits}*i +: {src_bits}];",
          f"    wire signed [31:0] oa_{l} = o_y_{l}[{OUT_BITS}*i +: {OUT_BITS}];",
          "    wire signed [31:0] ra_" + str(l) + " = res[32*i +: 32];",
          f"    wire signed [31:0] da_{l} = ffn_y_{l}[{OUT_BITS}*i +: {OUT_BITS}];"]
    L += _requant(f"s1_{l}", f"sa_{l}", src_bits, la.skip1, ib)
    L += _requant(f"ob_{l}", f"oa_{l}", 32, la.o_rq, ib)
    L += _requant(f"s2_{l}", f"ra_{l}", 32, la.skip2, ib)
    L += _requant(f"db_{l}", f"da_{l}", 32, la.down_rq, ib)
    q = la.q.cycles("me")
    steps = [
        Step(f"{la.name}.attn_norm", "unit", la.attn_norm.cycles(), f"n1_done_{l}"),
        Step(f"{la.name}.qkv", "unit", max(q, la.k.cycles("me"), la.v.cycles("me")),
             f"q_done_{l} && k_done_{l} && v_done_{l}"),
        Step(f"{la.name}.qkv_requant", "pass", n=nq, body=qkv),
        Step(f"{la.name}.rope", "pass", n=nq, body=rope),
        Step(f"{la.name}.attn", "unit", a.cycles(), f"att_done_{l}"),
        Step(f"{la.name}.o_proj", "unit", la.o.cycles("me"), f"o_done_{l}"),
        Step(f"{la.name}.residual", "pass", n=c, body=(f"res[32*i +: 32] <= s1_{l} + ob_{l};",)),
        Step(f"{la.name}.ffn_norm", "unit", la.ffn_norm.cycles(), f"n2_done_{l}"),
        Step(f"{la.name}.ffn", "unit", la.ffn.cycles(), f"ffn_done_{l}"),
        Step(f"{la.name}.residual_ffn", "pass", n=c,
             body=(f"res[32*i +: 32] <= s2_{l} + db_{l};",)),
    ]
    starts = {"n1": 0, "qkv": 1, "att": 4, "o": 5, "n2": 7, "ffn": 8}
    return L, [(go[k], v) for k, v in starts.items()], steps


def steps(spec: DecodeSpec) -> list[Step]:
    """The controller's steps, in order (the cycle model's and the FSM's)."""
    return _build(spec)[2]


def _build(spec: DecodeSpec) -> tuple[list[str], list[str], list[Step]]:
    la0 = spec.layers[0]
    nq, c = la0.q.n, spec.width
    ib = _bits(max(nq, c))
    sb = _bits(la0.attn.slots)
    db = _bits(la0.attn.dim)
    roms: dict[int, int] = {}
    rom_lines: list[str] = []
    for l, la in enumerate(spec.layers):
        same = next((j for j in range(l) if np.array_equal(spec.layers[j].rope.cos, la.rope.cos)
                     and np.array_equal(spec.layers[j].rope.sin, la.rope.sin)), None)
        if same is not None:
            roms[l] = roms[same]
            continue
        roms[l] = l
        rom_lines += _rope_rom(f"rcos_{l}", la.rope.cos, sb, db)
        rom_lines += _rope_rom(f"rsin_{l}", la.rope.sin, sb, db)
    body: list[str] = []
    all_steps: list[Step] = []
    gos: list[tuple[str, int]] = []
    for l, la in enumerate(spec.layers):
        lines, starts, st = _layer_glue(l, la, spec, ib, roms)
        base = len(all_steps)
        gos += [(w, base + k) for w, k in starts]
        body += lines
        all_steps += st
    if spec.head:
        norm, lm = spec.head
        body += ["    // ---- final norm and LM head",
                 "    wire nf_done, lm_done, go_nf, go_lm;",
                 f"    wire [{c * 8 - 1}:0] nf_y;",
                 f"    {norm.top} u_nf (.clk(clk), .rst(rst), .start(go_nf), .x(res), "
                 ".done(nf_done), .y(nf_y));",
                 f"    {lm.top('me', COMPACT)} u_lm (.clk(clk), .rst(rst), .start(go_lm), .x(nf_y), "
                 ".done(lm_done), .y(y));"]
        gos += [("go_nf", len(all_steps)), ("go_lm", len(all_steps) + 1)]
        all_steps += [Step(f"{norm.name}", "unit", norm.cycles(), "nf_done"),
                      Step(lm.name, "unit", lm.cycles("me"), "lm_done")]
    else:
        body.append("    assign y = res;")
    pcb = _bits(len(all_steps) + 1)
    body += [f"    assign {w} = running && pc == {pcb}'d{k} && !waiting;" for w, k in gos]
    return rom_lines + body, [f"{pcb}", f"{ib}", f"{sb}", f"{db}"], all_steps


def generate_decode(spec: DecodeSpec) -> Design:
    """The decode step as a Design: its top module and every unit's files."""
    la0 = spec.layers[0]
    c, nq, nk = spec.width, la0.q.n, la0.k.n
    a = la0.attn
    body, (pcb, ib, sb, db), all_steps = _build(spec)
    pcb, ib, sb, db = int(pcb), int(ib), int(sb), int(db)
    cache = a.kv_heads * a.slots * a.dim * 8
    n_layers = len(spec.layers)
    what = "logits (the LM head's int32)" if spec.head else "the layer's residual (int32)"
    L = [f"// Generated by llmc.rtl.hn_ctrl from {spec.name}: a decode step of {n_layers} "
         f"layer(s), {spec.weights:,} hardwired int4 weights, {len(all_steps)} controller steps.",
         "// Do not edit: regenerate instead (same input, same bytes).",
         "`timescale 1ns / 1ps", "`default_nettype none", "",
         f"// {spec.top}: the units of every layer and the controller sequencing them",
         f"module {spec.top} (",
         "    input  wire clk,",
         "    input  wire rst,                  // synchronous, active high",
         "    input  wire fill,                 // load every attention buffer from kc_*/vc_*"]
    for l in range(n_layers):
        L.append(f"    input  wire [{cache - 1}:0] kc_{l},  // layer {l}'s K cache [g][s][d] "
                 f"int8")
        L.append(f"    input  wire [{cache - 1}:0] vc_{l},")
    L += ["    input  wire start,                // run one decode step (ignored while busy)",
          f"    input  wire [{sb - 1}:0] pos,     // the token's position",
          f"    input  wire [{c * spec.in_bits - 1}:0] x,  // {c} signed {spec.in_bits}-bit: "
          "the input row",
          "    output reg  done,"]
    for l, la in enumerate(spec.layers):
        L.append(f"    output wire [{la.ffn.hidden * 8 - 1}:0] h_{l},  // {la.name}: SwiGLU "
                 "output (int8)")
    L += [f"    output wire [{spec.out_n * OUT_BITS - 1}:0] y   // {what}", ");",
          "    reg  running, waiting;",
          f"    reg  [{pcb - 1}:0] pc;              // the step",
          f"    reg  [{ib - 1}:0] i;               // a pass's element",
          f"    reg  [{sb - 1}:0] pos_r;",
          f"    reg  [{c * 32 - 1}:0] res;       // the residual stream (int32)",
          f"    reg  [{nq * 8 - 1}:0] q8, qr;     // q requantized, after RoPE (int8)",
          f"    reg  [{nk * 8 - 1}:0] k8, kr, v8;",
          f"    wire [{ib - 1}:0] ip = i ^ {ib}'d{a.dim // 2};  // the RoPE partner",
          f"    wire [{db - 1}:0] rd = i[{db - 1}:0];     // the element's place in its head",
          "    wire signed [7:0] rx_q = q8[8*i +: 8], rp_q = q8[8*ip +: 8], rn_q = -rp_q;",
          "    wire signed [7:0] rx_k = k8[8*i +: 8], rp_k = k8[8*ip +: 8], rn_k = -rp_k;",
          f"    wire signed [7:0] rr_q = i[{db - 1}] ? rp_q : rn_q;  // rot: -x[d+D/2], "
          "x[d-D/2]",
          f"    wire signed [7:0] rr_k = i[{db - 1}] ? rp_k : rn_k;", ""]
    L += body
    L += ["", "    always @(posedge clk) begin",
          "        if (rst) begin",
          "            running <= 1'b0; waiting <= 1'b0; done <= 1'b0;",
          "        end else if (!running) begin",
          "            if (start) begin",
          f"                running <= 1'b1; pc <= {pcb}'d0; waiting <= 1'b0; i <= {ib}'d0;",
          "                done <= 1'b0; pos_r <= pos;",
          "            end",
          "        end else begin",
          "            case (pc)"]
    for k, st in enumerate(all_steps):
        L.append(f"                {pcb}'d{k}: begin  // {st.name}")
        if st.kind == "unit":
            L += ["                    if (!waiting) waiting <= 1'b1;",
                  f"                    else if ({st.done}) begin",
                  f"                        waiting <= 1'b0; pc <= {pcb}'d{k + 1};",
                  "                    end"]
        else:
            L += [f"                    {b}" for b in st.body]
            L += [f"                    if (i == {ib}'d{st.n - 1}) begin",
                  f"                        i <= {ib}'d0; pc <= {pcb}'d{k + 1};",
                  f"                    end else i <= i + {ib}'d1;"]
        L.append("                end")
    L += ["                default: begin done <= 1'b1; running <= 1'b0; end  // finished",
          "            endcase", "        end", "    end", "endmodule", "",
          "`default_nettype wire"]
    text = "\n".join(L) + "\n"
    generated: list[tuple[str, str]] = []
    for la in spec.layers:
        generated += generate_norm(la.attn_norm).generated
        for layer in (la.q, la.k, la.v, la.o):
            generated += generate_me(layer, COMPACT).generated
        generated += generate_attn(la.attn).generated
        generated += generate_norm(la.ffn_norm).generated
        generated += generate_ffn(la.ffn, COMPACT).generated
    if spec.head:
        generated += generate_norm(spec.head[0]).generated + \
            generate_me(spec.head[1], COMPACT).generated
    generated.append((f"{spec.top}.v", text))
    return Design(spec.top, tuple(generated), ("llmc_hn_neuron",) if COMPACT else
                  ("llmc_popcount",))
