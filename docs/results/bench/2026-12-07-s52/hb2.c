// uk_gemm at M rows over L weight copies (L x K x N, DRAM when large), T threads splitting the columns.
// usage: hb2 LIB.so BITS M K N L T REPS [same] ; prints best ms per pass and GMAC/s. Added after hp1-ab.txt's runs:
// a 9th argument gives every copy the same weights; NOBAR=1 drops the barrier between copies.
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <dlfcn.h>
#include <time.h>
#include <pthread.h>
typedef struct { int bits, block; int64_t k, n, kp, np; } uk_shape;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef void(*gemm_t)(const uk_shape*,const void*,int64_t,const uint8_t*,const float*,const float*,float*,int64_t,int64_t,int);
static gemm_t gemm; static uk_shape s; static int64_t m; static int L,T,is; static uint8_t**w; static float**ws; static void*scr; static float*c;
static pthread_barrier_t bar;
static void* work(void*p){ int64_t t=(int64_t)p, G=s.np/16, g0=G*t/T, g1=G*(t+1)/T;
  for(int l=0;l<L;l++){ gemm(&s,scr,m,w[l],ws[l],NULL,c,g0,g1,is); if(!getenv("NOBAR")) pthread_barrier_wait(&bar);} return NULL;}
int main(int argc,char**argv){
  void*h=dlopen(argv[1],RTLD_NOW); if(!h){puts(dlerror());return 1;}
  int bits=atoi(argv[2]); m=atoll(argv[3]); int64_t k=atoll(argv[4]),n=atoll(argv[5]); L=atoi(argv[6]); T=atoi(argv[7]); int reps=atoi(argv[8]);
  size_t(*pb)(const uk_shape*)=dlsym(h,"uk_packed_bytes"); size_t(*ps)(const uk_shape*)=dlsym(h,"uk_packed_scales");
  void(*pack)(const uk_shape*,const uint8_t*,const float*,uint8_t*,float*)=dlsym(h,"uk_pack");
  size_t(*sb)(const uk_shape*,int64_t)=dlsym(h,"uk_scratch_bytes");
  void(*quant)(const uk_shape*,const float*,int64_t,void*)=dlsym(h,"uk_quantize");
  gemm=(gemm_t)dlsym(h,"uk_gemm"); int(*isa)(void)=dlsym(h,"uk_isa"); is=isa();
  s=(uk_shape){bits,128,k,n,k,(n+15)/16*16};
  uint8_t*src=malloc(n*k*bits/8); float*sc=malloc(n*(k/128)*4); for(int64_t i=0;i<n*(k/128);i++)sc[i]=0.01f;
  w=malloc(L*sizeof*w); ws=malloc(L*sizeof*ws); srand(1);
  int same=argc>9; for(int l=0;l<L;l++){ if(same&&l){w[l]=w[0];ws[l]=ws[0];continue;} for(size_t i=0;i<(size_t)n*k*bits/8;i++)src[i]=rand();
    w[l]=aligned_alloc(64,(pb(&s)+63)/64*64); ws[l]=aligned_alloc(64,(ps(&s)*4+63)/64*64); pack(&s,src,sc,w[l],ws[l]);}
  float*a=malloc(m*k*4); for(int64_t i=0;i<m*k;i++)a[i]=(rand()%2001-1000)/1000.f;
  scr=aligned_alloc(64,(sb(&s,m)+63)/64*64); quant(&s,a,m,scr);
  c=malloc(m*n*4); double best=1e9; pthread_barrier_init(&bar,NULL,T);
  for(int r=0;r<reps;r++){ pthread_t th[16]; double t0=now();
    for(int64_t t=1;t<T;t++) pthread_create(&th[t],NULL,work,(void*)t); work((void*)0);
    for(int t=1;t<T;t++) pthread_join(th[t],NULL); double t=now()-t0; if(t<best)best=t;}
  double sum=0; for(int64_t i=0;i<m*n;i++)sum+=c[i];
  printf("%.3f ms %.1f GMAC/s chk %.6g\n",best*1e3,m*k*n*(double)L/best/1e9,sum);
  return 0;}
