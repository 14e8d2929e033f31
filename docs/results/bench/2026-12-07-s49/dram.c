/* 24 trunk-like layers of int4 (or int8) packed weights (~222 MB int4), 2 threads splitting each matrix's column groups,
 * a spin barrier after each matrix, as ORT's ParallelFor; time per pass at M rows, best of R */
#include "qmatmul_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
enum { L = 24, NM = 4 };
static int64_t KS[NM] = {896, 896, 896, 4864}, NS_[NM] = {1152, 896, 9728, 896};
typedef struct { uk_shape s; uint8_t* w; float* ws; void* scr; float* c; } Mat;
static Mat mats[L * NM];
static int M, bits, isa, T = 2;
static atomic_int bar_count; static atomic_int bar_gen;
static void barrier(void) {
  int g = atomic_load(&bar_gen);
  if (atomic_fetch_add(&bar_count, 1) == 1) { atomic_store(&bar_count, 0); atomic_fetch_add(&bar_gen, 1); }
  else while (atomic_load(&bar_gen) == g) __builtin_ia32_pause();
}
static int passes;
static void* work(void* arg) {
  int id = (int)(intptr_t)arg;
  for (int p = 0; p < passes; p++)
    for (int i = 0; i < L * NM; i++) {
      Mat* m = &mats[i]; int64_t G = m->s.np / 16, half = G / 2;
      if (T == 1) uk_gemm(&m->s, m->scr, M, m->w, m->ws, NULL, m->c, 0, G, isa);
      else { uk_gemm(&m->s, m->scr, M, m->w, m->ws, NULL, m->c, id ? half : 0, id ? G : half, isa);
      barrier(); }
    }
  return NULL;
}
int main(int argc, char** argv) {
  M = atoi(argv[1]); bits = atoi(argv[2]); int reps = argc > 3 ? atoi(argv[3]) : 5; T = argc > 4 ? atoi(argv[4]) : 2; isa = uk_isa();
  int block = getenv("BLK") ? atoi(getenv("BLK")) : bits == 4 ? 128 : 32; double bytes = 0, macs = 0;
  for (int i = 0; i < L * NM; i++) {
    Mat* m = &mats[i]; int64_t K = KS[i % NM], N = NS_[i % NM];
    m->s = (uk_shape){bits, block, K, N, K, (N + 15) / 16 * 16};
    size_t nbytes = (size_t)N * K * bits / 8; uint8_t* src = malloc(nbytes); for (size_t j = 0; j < nbytes; j++) src[j] = rand();
    float* sc = malloc(N * K / block * 4); for (int j = 0; j < N * K / block; j++) sc[j] = 0.01f;
    m->w = aligned_alloc(64, (uk_packed_bytes(&m->s) + 63) / 64 * 64); m->ws = aligned_alloc(64, (uk_packed_scales(&m->s) * 4 + 63) / 64 * 64);
    uk_pack(&m->s, src, sc, m->w, m->ws); free(src); free(sc);
    float* A = malloc(M * K * 4); for (int j = 0; j < M * K; j++) A[j] = (rand() % 200 - 100) / 50.f;
    m->scr = malloc(uk_scratch_bytes(&m->s, M)); uk_quantize(&m->s, A, M, m->scr); free(A);
    m->c = malloc(M * N * 4);
    bytes += uk_packed_bytes(&m->s) + uk_packed_scales(&m->s) * 4.; macs += (double)M * K * N;
  }
  passes = 3; double best = 1e9;
  for (int r = 0; r < reps; r++) {
    pthread_t t; double t0 = now();
    if (T == 2) { pthread_create(&t, NULL, work, (void*)1); work((void*)0); pthread_join(t, NULL); } else work((void*)0);
    double dt = (now() - t0) / passes; if (dt < best) best = dt;
  }
  printf("int%d M=%d: %.2f ms a pass, %.1f GB/s, %.0f G MAC/s (%.0f MB)\n", bits, M, best * 1e3, bytes / best / 1e9, macs / best / 1e9, bytes / 1e6);
  return 0;
}
