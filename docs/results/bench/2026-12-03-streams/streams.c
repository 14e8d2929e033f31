/* Read bandwidth from S streams per thread: T threads each read their share of a BUF-MiB buffer as S equal
 * parts walked side by side (64-byte AVX-512 loads, 4 per step). ./a.out MIB THREADS STREAMS */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static char* buf; static size_t N; static int NT, S;
__attribute__((target("avx512f"))) static void* rd(void* p){ long t=(long)p; size_t a=N*t/NT, b=N*(t+1)/NT; size_t len=(b-a)/S/256*256;
  __m512i s[8]; for(int j=0;j<8;j++) s[j]=_mm512_setzero_si512();
  for(size_t i=0;i<len;i+=256) for(int j=0;j<S;j++){ const char* q=buf+a+j*len+i;
    s[j]=_mm512_add_epi32(s[j],_mm512_add_epi32(_mm512_add_epi32(_mm512_load_si512(q),_mm512_load_si512(q+64)),_mm512_add_epi32(_mm512_load_si512(q+128),_mm512_load_si512(q+192)))); }
  __m512i z=s[0]; for(int j=1;j<8;j++) z=_mm512_add_epi32(z,s[j]); volatile int x=_mm512_reduce_add_epi32(z); (void)x; return 0; }
int main(int c,char**v){ N=(size_t)atoi(v[1])<<20; NT=atoi(v[2]); S=atoi(v[3]); buf=aligned_alloc(64,N+4096); memset(buf,1,N+4096);
  double best=1e9; for(int r=0;r<10;r++){ double t0=now(); pthread_t th[8]; for(long t=1;t<NT;t++) pthread_create(&th[t],0,rd,(void*)t); rd(0); for(int t=1;t<NT;t++) pthread_join(th[t],0); double d=now()-t0; if(d<best) best=d; }
  printf("%zu MiB threads=%d streams=%d: %.1f GB/s\n", N>>20, NT, S, N/best/1e9); }
