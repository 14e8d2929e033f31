/* The peak VPDPBUSD rate of one core: 12 independent zmm chains. gcc -O2 vpdpbusd_peak.c && ./a.out */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
__attribute__((target("avx512f,avx512vnni,avx512bw"))) int main(){
  __m512i a[12]; __m512i x=_mm512_set1_epi8(3), y=_mm512_set1_epi8(5);
  for(int i=0;i<12;i++)a[i]=_mm512_setzero_si512();
  long N=200000000; double t=now();
  for(long i=0;i<N;i++){
    #pragma GCC unroll 12
    for(int k=0;k<12;k++) a[k]=_mm512_dpbusd_epi32(a[k],x,y);
    __asm__ volatile("" : "+v"(x));
  }
  double dt=now()-t; int s=0; for(int i=0;i<12;i++) s+=_mm512_reduce_add_epi32(a[i]);
  printf("zmm vpdpbusd/s per core %.2f G  => %.0f GMAC/s per core (%d)\n", N*12/dt/1e9, N*12*64/dt/1e9, s);
}
