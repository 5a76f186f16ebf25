"""The CPU's single-core fp32 peak, measured: a C loop of independent FMAs compiled here with -O3 -march=native."""

from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

# 16 independent accumulators hide the FMA latency (4 cycles x 2 pipes on current x86 cores)
FMA_C = r"""
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#if defined(__AVX512F__)
typedef __m512 vec; enum { LANES = 16 };
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
static float hsum(vec v) { return _mm512_reduce_add_ps(v); }
#else
typedef __m256 vec; enum { LANES = 8 };
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float hsum(vec v) {
    float f[8]; _mm256_storeu_ps(f, v); float s = 0;
    for (int i = 0; i < 8; i++) s += f[i];
    return s;
}
#endif
#define ACC 16
int main(void) {
    const long iters = 100000000L;
    vec acc[ACC]; vec a = SET1(0.999999f), b = SET1(1e-7f);
    for (int i = 0; i < ACC; i++) acc[i] = SET1((float)i);
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long n = 0; n < iters; n++)
        for (int i = 0; i < ACC; i++) acc[i] = FMA(acc[i], a, b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    vec s = acc[0]; for (int i = 1; i < ACC; i++) s = ADD(s, acc[i]);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("%f %d %f\n", 2.0 * LANES * ACC * iters / secs / 1e9, LANES, hsum(s));
    return 0;
}
"""


def fma_peak_gflops() -> tuple[float, str]:
    """Single-thread fp32 GFLOP/s of the FMA loop, and how it was measured."""
    with tempfile.TemporaryDirectory(prefix="gridwatch-fma-") as tmp:
        source, binary = Path(tmp) / "fma.c", Path(tmp) / "fma"
        source.write_text(FMA_C, encoding="ascii")
        subprocess.run(["gcc", "-O3", "-march=native", str(source), "-o", str(binary)], check=True)
        best, lanes = 0.0, 0
        for _ in range(3):
            out = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.split()
            best, lanes = max(best, float(out[0])), int(out[1])
    how = (
        f"gcc -O3 -march=native, {lanes}-lane fp32 FMA intrinsics, 16 independent accumulators, "
        "1 thread, best of 3 runs of 1.6e9 FMAs"
    )
    return best, how
