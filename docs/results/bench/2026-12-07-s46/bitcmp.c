/* dump C of uk_gemm (6 shapes, 1-9 rows, 4 and 8 bits, 3 column shares) for the ISA uk_isa() picks (UNIFORK_RT_ISA), binary on stdout; run-ab.sh compares two libraries with it */
#include "qmatmul_kernels.h"
#include <stdio.h>
#include <stdlib.h>
int main(void) {
  int shapes[][3] = {{896, 56, 0}, {896, 1000, 0}, {4864, 200, 0}, {128, 16, 0}, {256, 8 * 16 + 7, 0}, {1024, 4 * 16 * 3 + 16, 0}};
  srand(1);
  for (int bits = 4; bits <= 8; bits += 4)
    for (unsigned si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
      for (int m = 1; m <= 9; m++) {
        int64_t K = shapes[si][0], N = shapes[si][1], block = 128;
        uk_shape s = {bits, block, K, N, K, (N + 15) / 16 * 16};
        size_t nbytes = (size_t)N * K * bits / 8;
        uint8_t* src = malloc(nbytes);
        for (size_t i = 0; i < nbytes; i++) src[i] = (uint8_t)rand();
        float* sc = malloc(N * K / block * 4);
        for (int i = 0; i < N * K / block; i++) sc[i] = (rand() % 1000 + 1) / 1e4f;
        uint8_t* W = aligned_alloc(64, (uk_packed_bytes(&s) + 63) / 64 * 64);
        float* WS = aligned_alloc(64, (uk_packed_scales(&s) * 4 + 63) / 64 * 64);
        uk_pack(&s, src, sc, W, WS);
        float* A = malloc(m * K * 4);
        for (int i = 0; i < m * K; i++) A[i] = (rand() % 2001 - 1000) / 300.f;
        float* bias = malloc(N * 4);
        for (int i = 0; i < N; i++) bias[i] = (rand() % 100) / 50.f;
        float* C = calloc(m * N, 4);
        void* scr = malloc(uk_scratch_bytes(&s, m));
        uk_quantize(&s, A, m, scr);
        int64_t G = s.np / 16;
        for (int t = 0; t < 3; t++) uk_gemm(&s, scr, m, W, WS, si % 2 ? bias : NULL, C, G * t / 3, G * (t + 1) / 3, uk_isa());
        fwrite(C, 4, m * N, stdout);
        free(src); free(sc); free(W); free(WS); free(A); free(bias); free(C); free(scr);
      }
  return 0;
}
