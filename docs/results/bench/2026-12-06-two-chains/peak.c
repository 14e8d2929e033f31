/* VPDPBUSD zmm throughput and latency on one core. The clock line says "dependent adds" but times a chain of
 * imul (3 cycles each; add chains run faster than a cycle each on this core, which is why they were replaced). */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
__attribute__((target("avx512f,avx512vnni,avx512bw"))) int main(void){
  long N=200000000; double t;
  /* clock: a chain of imuls, 3 cycles each (the printed label says "dependent adds") */
  long x=3; t=now();
  for(long i=0;i<N;i++){ __asm__ volatile("imul %0, %0\n\timul %0, %0\n\timul %0, %0\n\timul %0, %0" : "+r"(x)); }
  double ghz = 12.0*N/(now()-t)/1e9; printf("clock ~ %.2f GHz (dependent adds)\n", ghz);
  __m512i a0=_mm512_set1_epi32(1),a1=a0,a2=a0,a3=a0,a4=a0,a5=a0,a6=a0,a7=a0,a8=a0,a9=a0,a10=a0,a11=a0;
  __m512i w=_mm512_set1_epi8(3), q=_mm512_set1_epi8(2);
  long M=50000000; t=now();
  for(long i=0;i<M;i++){
    __asm__ volatile(
      "vpdpbusd %12, %13, %0\n\tvpdpbusd %12, %13, %1\n\tvpdpbusd %12, %13, %2\n\tvpdpbusd %12, %13, %3\n\t"
      "vpdpbusd %12, %13, %4\n\tvpdpbusd %12, %13, %5\n\tvpdpbusd %12, %13, %6\n\tvpdpbusd %12, %13, %7\n\t"
      "vpdpbusd %12, %13, %8\n\tvpdpbusd %12, %13, %9\n\tvpdpbusd %12, %13, %10\n\tvpdpbusd %12, %13, %11\n\t"
      : "+v"(a0),"+v"(a1),"+v"(a2),"+v"(a3),"+v"(a4),"+v"(a5),"+v"(a6),"+v"(a7),"+v"(a8),"+v"(a9),"+v"(a10),"+v"(a11) : "v"(q),"v"(w));
  }
  double dt=now()-t; double per=12.0*M/dt;
  printf("vpdpbusd zmm, 12 chains: %.2f G/s = %.2f per cycle at %.2f GHz\n", per/1e9, per/1e9/ghz, ghz);
  t=now();
  for(long i=0;i<M;i++){
    __asm__ volatile(
      "vpdpbusd %4, %5, %0\n\tvpdpbusd %4, %5, %1\n\tvpdpbusd %4, %5, %2\n\tvpdpbusd %4, %5, %3\n\t"
      : "+v"(a0),"+v"(a1),"+v"(a2),"+v"(a3) : "v"(q),"v"(w));
  }
  dt=now()-t; per=4.0*M/dt;
  printf("vpdpbusd zmm, 4 chains: %.2f per cycle (latency ~ %.1f cycles if latency-bound)\n", per/1e9/ghz, 4/(per/1e9/ghz));
  volatile int sink=_mm512_reduce_add_epi32(_mm512_add_epi32(a0,a11)); (void)sink; (void)x;
  return 0;
}
