"""The image decoder of the ORT-optimized variant (`--graphs ort`): the portable graph, rewritten for ONNX Runtime's CPU.

Two rewrites of the same sums, applied to the exported vision_decoder.onnx:

- **ConvTranspose -> Convs + DepthToSpace ("sub-pixel").** ONNX Runtime runs ConvTranspose as a GEMM and a
  col2im scatter, outside its NCHWc convolution path: in the paper decoder it ran at about 150 G multiply-add flops
  a second against its Convs' 400 (docs/results/bench/2026-12-06-s43/prof-decoder.txt). A stride-2 transposed
  convolution is four ordinary convolutions, one per output phase (row parity a, column parity b), interleaved:

      k=4, s=2, p=1:  out[2i+a, 2j+b] = sum over 2x2 taps of x[i-1+a+u, j-1+b+v] . w[3-a-2u, 3-b-2v]
                      -> 4 Convs (2x2 kernels, phase-dependent pads), Concat, DepthToSpace(2, DCR)
      k=2, s=2, p=0:  out[2i+a, 2j+b] = x[i, j] . w[a, b]  -> one 1x1 Conv of 4 x Cout channels, DepthToSpace

  The same products, summed in another order: differences of float rounding only (tests/test_ort_image.py).
- **GELU -> com.microsoft Gelu.** torch.onnx writes the exact GELU as Div, Erf, Add, Mul, Mul, in an order
  ONNX Runtime's GeluFusion does not match (x * (0.5 * (1 + erf(x / sqrt 2)))), so it ran as 5 nodes (26 of 209 ms
  an image in the paper decoder). Gelu is one node of ONNX Runtime's CPU contrib ops (0.5 x (1 + erf(x / sqrt 2))).

Anything else is left as exported; a ConvTranspose of another shape stays a ConvTranspose.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CONTRIB = "com.microsoft"
SQRT2 = float(np.sqrt(2.0))


def _attrs(node) -> dict:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _scalar(inits: dict, name: str) -> float | None:
    """The value of initializer NAME if it is a scalar (shape [] or [1], so it broadcasts without adding axes)."""
    from onnx import numpy_helper

    t = inits.get(name)
    if t is None or list(t.dims) not in ([], [1]):
        return None
    return float(numpy_helper.to_array(t).reshape(()))


def _subgraph_reads(graph) -> set[str]:
    """Every name the subgraphs (If / Loop / Scan bodies) of GRAPH's nodes read, at any depth."""
    from onnx import AttributeProto

    names: set[str] = set()
    for n in graph.node:
        for a in n.attribute:
            subs = [a.g] if a.type == AttributeProto.GRAPH else list(a.graphs) if a.type == AttributeProto.GRAPHS else []
            for sg in subs:
                names.update(i for m in sg.node for i in m.input)
                names.update(o.name for o in sg.output)
                names |= _subgraph_reads(sg)
    return names


def _outside_readers(graph) -> set[str]:
    """The names read by something other than a top-level node: graph outputs and inputs, and subgraphs."""
    return {o.name for o in graph.output} | {i.name for i in graph.input} | _subgraph_reads(graph)


def _consumers(graph) -> dict[str, list]:
    """name -> the top-level nodes that read it; None stands for a reader that is not a top-level node (a graph
    input or output of that name, or a subgraph), so that such a value is never taken as read by one node only."""
    out: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            out.setdefault(i, []).append(n)
    for name in sorted(_outside_readers(graph)):
        out.setdefault(name, []).append(None)
    return out


def _drop_unread(model, names: set[str]) -> None:
    """Remove the initializers among NAMES that nothing reads any more (no node, subgraph, graph input or output),
    and value_info entries of tensors no node produces and no initializer or graph input holds."""
    g = model.graph
    read = {i for n in g.node for i in n.input} | _outside_readers(g)
    keep = [t for t in g.initializer if t.name in read or t.name not in names]
    g.ClearField("initializer")
    g.initializer.extend(keep)
    held = {o for n in g.node for o in n.output} | {t.name for t in g.initializer} | {i.name for i in g.input}
    info = [v for v in g.value_info if v.name in held]
    g.ClearField("value_info")
    g.value_info.extend(info)


def _phase_convs(node, w: np.ndarray, bias: str, bias_value: np.ndarray | None, k: int):
    """(Convs, their new initializers, the name of the tensor DepthToSpace takes) of one ConvTranspose of kernel k
    (4: pads 1; 2: pads 0), stride 2, weight W (Cin, Cout, k, k), bias BIAS (an initializer's name, or "")."""
    from onnx import helper

    out, name = node.output[0], node.name or node.output[0]
    cin, cout = w.shape[:2]
    if k == 2:  # every output pixel has one tap: a 1x1 Conv to 4 x Cout channels, channel (2a + b) x Cout + co
        wn, cat = f"{name}.subpixel.w", f"{out}.subpixel"
        kernel = w.transpose(2, 3, 1, 0).reshape(4 * cout, cin, 1, 1)
        inits = {wn: np.ascontiguousarray(kernel)}
        inputs = [node.input[0], wn]
        if bias:  # each phase's channels get the same bias
            inputs.append(f"{name}.subpixel.b")
            inits[inputs[-1]] = np.tile(bias_value, 4)
        nodes = [helper.make_node("Conv", inputs, [cat], name=cat, kernel_shape=[1, 1])]
        return nodes, inits, cat
    # k == 4, pads 1: phase 0 reads x[i-1], x[i] with taps 3, 1 (pad before); phase 1 x[i], x[i+1] with 2, 0
    taps = {0: ([3, 1], (1, 0)), 1: ([2, 0], (0, 1))}
    nodes, inits, outs = [], {}, []
    for a in (0, 1):
        for b in (0, 1):
            (ka, (ta, ba)), (kb, (tb, bb)) = taps[a], taps[b]
            kernel = w[:, :, ka][:, :, :, kb].transpose(1, 0, 2, 3)  # (Cout, Cin, 2, 2)
            wn, o = f"{name}.p{a}{b}.w", f"{out}.p{a}{b}"
            inits[wn] = np.ascontiguousarray(kernel)
            nodes.append(helper.make_node("Conv", [node.input[0], wn] + ([bias] if bias else []), [o], name=o,
                                          kernel_shape=[2, 2], pads=[ta, tb, ba, bb]))
            outs.append(o)
    cat = f"{out}.subpixel"
    nodes.append(helper.make_node("Concat", outs, [cat], axis=1, name=cat))
    return nodes, inits, cat


def subpixel_deconvs(model) -> int:
    """Rewrite every ConvTranspose (2-D, stride 2, group 1, kernel 4 with pads 1 or kernel 2 with pads 0, weight an
    initializer) of MODEL (onnx.ModelProto, in place) as Convs + DepthToSpace. Returns how many were rewritten."""
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    overridable = {i.name for i in g.input}  # an initializer that is also a graph input may be fed another value
    new_nodes, added, replaced, count = [], [], set(), 0
    for n in g.node:
        if n.op_type != "ConvTranspose" or n.domain not in ("", "ai.onnx") or len(n.input) < 2:
            new_nodes.append(n)
            continue
        a = _attrs(n)
        w_t = inits.get(n.input[1])
        k = list(a.get("kernel_shape", []))
        ok = (w_t is not None and len(w_t.dims) == 4 and a.get("group", 1) == 1
              and list(a.get("strides", [])) == [2, 2] and list(a.get("dilations", [1, 1])) == [1, 1]
              and list(a.get("output_padding", [0, 0])) == [0, 0] and "output_shape" not in a
              and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
              and ((k == [4, 4] and list(a.get("pads", [])) == [1, 1, 1, 1])
                   or (k == [2, 2] and list(a.get("pads", [0, 0, 0, 0])) == [0, 0, 0, 0]))
              and list(w_t.dims[2:]) == k)
        bias = n.input[2] if len(n.input) > 2 else ""
        if ok and ((bias and bias not in inits) or n.input[1] in overridable or bias in overridable):
            ok = False
        if not ok:
            new_nodes.append(n)
            continue
        w = numpy_helper.to_array(w_t)
        convs, new_inits, cat = _phase_convs(n, w, bias, numpy_helper.to_array(inits[bias]) if bias else None, k[0])
        new_nodes += convs
        new_nodes.append(helper.make_node("DepthToSpace", [cat], [n.output[0]], blocksize=2, mode="DCR",
                                          name=f"{n.name or n.output[0]}.d2s"))
        added += [numpy_helper.from_array(v.astype(w.dtype), name) for name, v in new_inits.items()]
        replaced.update(n.input[1:3])
        count += 1
    if count:
        taken = {t.name for t in g.initializer} | {o for n in g.node for o in n.output}
        if any(t.name in taken for t in added):  # the new names are the node's name + ".p00.w" etc.; a graph that already has them is left alone
            return 0
        g.ClearField("node")
        g.node.extend(new_nodes)
        g.initializer.extend(added)
        _drop_unread(model, replaced)
    return count


def _gelu_match(n, producers: dict, users: dict, inits: dict):
    """The nodes Div, Erf, Add, Mul(0.5), Mul(x) of x * (0.5 * (1 + erf(x / sqrt 2))) whose last Mul is N, or None."""
    if n.op_type != "Mul" or n.domain not in ("", "ai.onnx"):
        return None
    for inner_name, x in ((n.input[1], n.input[0]), (n.input[0], n.input[1])):
        half = producers.get(inner_name)
        if half is None or half.op_type != "Mul":
            continue
        for add_name, c in ((half.input[1], half.input[0]), (half.input[0], half.input[1])):
            add = producers.get(add_name)
            if add is None or add.op_type != "Add" or _scalar(inits, c) != 0.5:
                continue
            for erf_name, one in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
                erf = producers.get(erf_name)
                if erf is None or erf.op_type != "Erf" or _scalar(inits, one) != 1.0:
                    continue
                div = producers.get(erf.input[0])
                if (div is None or div.op_type != "Div" or div.input[0] != x
                        or not np.isclose(_scalar(inits, div.input[1]) or 0.0, SQRT2, rtol=0, atol=1e-6)):
                    continue
                chain = [div, erf, add, half]
                if all(len(users.get(m.output[0], [])) == 1 for m in chain):  # nothing else reads the inside
                    return chain
    return None


def fuse_gelus(model) -> int:
    """Replace each x * (0.5 * (1 + erf(x / sqrt 2))) of MODEL (in place) by one com.microsoft Gelu. Returns the count."""
    from onnx import helper

    g = model.graph
    inits = {t.name: t for t in g.initializer}
    producers = {o: n for n in g.node for o in n.output}
    users = _consumers(g)
    gone, replace, constants = set(), {}, set()
    for n in g.node:
        chain = _gelu_match(n, producers, users, inits)
        if chain is None:
            continue
        x = chain[0].input[0]
        gone.update(id(m) for m in chain)
        constants.update(i for m in chain for i in m.input if i in inits)
        replace[id(n)] = helper.make_node("Gelu", [x], [n.output[0]], name=f"{n.name or n.output[0]}.gelu",
                                          domain=CONTRIB)
    if replace:
        nodes = [replace.get(id(n), n) for n in g.node if id(n) not in gone]
        g.ClearField("node")
        g.node.extend(nodes)
        if not any(o.domain == CONTRIB for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid(CONTRIB, 1))
        _drop_unread(model, constants)  # the chains' scalars, where nothing else reads them
    return len(replace)


def ort_image_decoder(path: Path) -> dict[str, int]:
    """Rewrite the exported vision_decoder.onnx at PATH for ONNX Runtime's CPU (module doc); saved in place.
    Returns the rewrites made: {"subpixel": ConvTransposes, "gelu": GELUs}."""
    import onnx

    from .quantize import save_graph

    model = onnx.load(str(path))  # with its external data, if any: save_graph writes it again
    done = {"subpixel": subpixel_deconvs(model), "gelu": fuse_gelus(model)}
    if any(done.values()):
        save_graph(model, Path(path))
    return done
