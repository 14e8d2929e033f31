// read-rate probe variants, 2 threads, 512 MiB, best of 5 per variant, variants interleaved per round
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <stdint.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef struct {float*p; float*q; int64_t n; int v; float out;} job;
#define PF(kind, a) _mm_prefetch((const char*)(a), kind)
static float rdS(const float*p,int64_t n,int S,int pfd,int kind){
  int64_t part=n/S/16*16; __m512 acc[16]; for(int s=0;s<S;s++)acc[s]=_mm512_setzero_ps();
  for(int64_t i=0;i<part;i+=16){
    for(int s=0;s<S;s++){ const float*a=p+s*part+i; if(pfd && (i%16)==0){ if(kind==0)PF(_MM_HINT_T0,(const char*)a+pfd); else if(kind==1)PF(_MM_HINT_T1,(const char*)a+pfd); else PF(_MM_HINT_NTA,(const char*)a+pfd);} acc[s]=_mm512_add_ps(acc[s],_mm512_loadu_ps(a)); }
  }
  __m512 t=acc[0]; for(int s=1;s<S;s++)t=_mm512_add_ps(t,acc[s]); return _mm512_reduce_add_ps(t);
}
// variants: 0 copy; 1..4: S=1,4,8,16; 5..7: S=4 pf T0 1k,4k,16k; 8,9: S=4 pf T1 4k,16k; 10 S=4 nta 4k; 11 S=8 pf T0 4k
static void* run(void*a){job*j=a; int v=j->v;
  if(v==0){memcpy(j->q,j->p,j->n*4);return 0;}
  static const int S[]={0,1,4,8,16,4,4,4,4,4,4,8}, D[]={0,0,0,0,0,1024,4096,16384,4096,16384,4096,4096}, K[]={0,0,0,0,0,0,0,0,1,1,2,0};
  j->out=rdS(j->p,j->n,S[v],D[v],K[v]); return 0;}
int main(int argc,char**argv){int64_t n=512LL<<18; int rounds=argc>1?atoi(argv[1]):3; int NV=12;
  float*a=aligned_alloc(2<<20,n*4), *b=aligned_alloc(2<<20,n*4); for(int64_t i=0;i<n;i++){a[i]=1;b[i]=0;}
  const char*name[]={"copy(2x)","S1","S4","S8","S16","S4 t0 1k","S4 t0 4k","S4 t0 16k","S4 t1 4k","S4 t1 16k","S4 nta 4k","S8 t0 4k"};
  for(int r=0;r<rounds;r++){ for(int v=0;v<NV;v++){ double best=1e9; for(int k=0;k<5;k++){ pthread_t th[2]; job j[2]; double t0=now();
      for(int t=0;t<2;t++){j[t]=(job){a+t*(n/2),b+t*(n/2),n/2,v,0}; pthread_create(&th[t],0,run,&j[t]);} for(int t=0;t<2;t++)pthread_join(th[t],0);
      double dt=now()-t0; if(dt<best)best=dt;}
    printf("r%d %-10s %5.1f GB/s\n",r,name[v],(v==0?2.0:1.0)*n*4/best/1e9); fflush(stdout);} }
}
