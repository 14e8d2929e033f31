"""The timing build of our kernel library used by op_split.py / op_split_ab.py (session 41): qmatmul_op.c with rdtsc
summed per op kind (MatMulNBits, TransposeMatMul, the integer ops, GroupQueryAttention), read and reset by
uk_timing(out[8]) (4 cycle sums, then 4 call counts), and uk_rdtsc() for calibrating the clock.

    python timing_build.py OUT.so [KERNEL_DIR]   (KERNEL_DIR: unifork_rt/runtime/kernels, the default)
"""
import subprocess
import sys
import tempfile
from pathlib import Path

out = Path(sys.argv[1]).resolve()
kdir = Path(sys.argv[2] if len(sys.argv) > 2 else "unifork_rt/runtime/kernels").resolve()
s = (kdir / "qmatmul_op.c").read_text()
head = """#include <x86intrin.h>
static unsigned long long UT[4], UN[4];
void uk_timing(unsigned long long* out) { for (int i = 0; i < 4; i++) { out[i] = UT[i]; out[4 + i] = UN[i]; UT[i] = UN[i] = 0; } }
unsigned long long uk_rdtsc(void) { return __rdtsc(); }
"""
for i, name in enumerate(["kernel_compute", "fkernel_compute", "ikernel_compute", "akernel_compute"]):
    old = f"static OrtStatus* {name}(void* k, OrtKernelContext* ctx) {{"
    assert old in s, name
    s = s.replace(old, f"""static OrtStatus* {name}_(void* k, OrtKernelContext* ctx);
static OrtStatus* {name}(void* k, OrtKernelContext* ctx) {{ unsigned long long t0 = __rdtsc(); OrtStatus* st = {name}_(k, ctx); UT[{i}] += __rdtsc() - t0; UN[{i}]++; return st; }}
static OrtStatus* {name}_(void* k, OrtKernelContext* ctx) {{""", 1)
first = s.index("#include")  # after the file's own _GNU_SOURCE define
s = s[:first] + head + s[first:]
with tempfile.TemporaryDirectory() as tmp:
    src = Path(tmp) / "qmatmul_op_timing.c"
    src.write_text(s)
    subprocess.run(["gcc", "-O3", "-std=gnu11", "-fPIC", "-shared", f"-I{kdir}", "-o", str(out),
                    *(str(f) for f in sorted(kdir.glob("*.c")) if f.name != "qmatmul_op.c"), str(src), "-lm"],
                   check=True)  # every kernel source beside qmatmul_op.c (norm_kernels.c since session 42)
print(out)
