import time, io, numpy as np, torch, torch.nn.functional as F, onnxruntime as ort
from torch import nn
torch.manual_seed(0)

class PhaseConvT(nn.Module):
    """ConvTranspose2d(k=4, s=2, p=1) as one 2x2 conv (pad 1) with 4 x Cout outputs, then the 4 phases."""
    def __init__(self, ct: nn.ConvTranspose2d):
        super().__init__()
        W = ct.weight.detach()  # (Cin, Cout, 4, 4)
        taps = ([3, 1], [2, 0])
        blocks = []
        for a in (0, 1):
            for b in (0, 1):
                k = W[:, :, taps[a]][:, :, :, taps[b]]  # (Cin, Cout, 2, 2)
                blocks.append(k.permute(1, 0, 2, 3))
        self.register_buffer("w", torch.cat(blocks, 0).contiguous())  # (4 Cout, Cin, 2, 2)
        self.register_buffer("b", ct.bias.detach().repeat(4) if ct.bias is not None else torch.zeros(4 * W.shape[1]))
        self.cout = W.shape[1]
    def forward(self, x):
        H, Wd = x.shape[-2:]
        y = F.conv2d(x, self.w, self.b, padding=1)  # (B, 4 Cout, H+1, W+1)
        c = self.cout
        ph = [y[:, (2 * a + b) * c:(2 * a + b + 1) * c, a:a + H, b:b + Wd] for a in (0, 1) for b in (0, 1)]
        return F.pixel_shuffle(torch.cat(ph, 1), 2)  # DCR? check

for cin, cout, hw in ((128, 128, 128), (256, 128, 64), (256, 256, 32)):
    ct = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
    pc = PhaseConvT(ct)
    x = torch.randn(1, cin, hw, hw)
    with torch.no_grad():
        ref, got = ct(x), pc(x)
    print("maxdiff", (ref - got).abs().max().item())
    sess = {}
    for name, m in (("convT", ct), ("phase", pc)):
        f = io.BytesIO()
        torch.onnx.export(m, (x,), f, input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
        so = ort.SessionOptions(); so.intra_op_num_threads = 2
        sess[name] = ort.InferenceSession(f.getvalue(), so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    o = {k: s.run(None, {"x": xn})[0] for k, s in sess.items()}
    print("ort diff", np.abs(o["convT"] - o["phase"]).max())
    for rnd in range(2):
        for k, s in sess.items():
            t = time.perf_counter()
            for _ in range(5): s.run(None, {"x": xn})
            print(cin, cout, hw, k, f"{(time.perf_counter() - t) / 5 * 1e3:.1f} ms")
