#!/usr/bin/env bash
# Run COMMAND (default: the test suite, `python3 -m pytest -q -ra`; $PYTHON picks another
# interpreter) as on an x86-64 CPU with AVX2 but without AVX-512, VNNI or AMX: CPUID answers are
# masked for the command and every process it starts (avx2only.c: Linux CPUID faulting,
# LD_PRELOAD), so ONNX Runtime, numpy and PyTorch take their AVX2 kernels. Needs a C compiler and
# a CPU/kernel with CPUID faulting (flag cpuid_fault).
#
#   bash tests/avx2only/run.sh                       # the whole suite
#   bash tests/avx2only/run.sh python -m pytest tests/test_export.py -k quantized
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if ! grep -qw cpuid_fault /proc/cpuinfo; then
  echo "avx2only: this CPU or kernel has no CPUID faulting (cpuid_fault in /proc/cpuinfo), so CPUID cannot be" \
       "masked here; run on another machine, or under qemu-x86_64 -cpu max (no AVX-512; 30-80x slower)" >&2
  exit 2
fi
lib=${AVX2ONLY_LIB:-${XDG_CACHE_HOME:-$HOME/.cache}/unifork-rt/avx2only.so}
mkdir -p "$(dirname "$lib")"
cc -O2 -Wall -shared -fPIC -o "$lib.tmp.$$" "$here/avx2only.c" -ldl
mv -f "$lib.tmp.$$" "$lib"
export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
# glibc picks its string functions before any preload runs: mask those through its tunables
export GLIBC_TUNABLES="glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512_VNNI,-AVX_VNNI${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
"${PYTHON:-python3}" "$here/probe.py"  # what the libraries see; fails if AVX-512 is still visible
if [ "$#" -eq 0 ]; then
  set -- "${PYTHON:-python3}" -m pytest -q -ra
fi
exec "$@"
