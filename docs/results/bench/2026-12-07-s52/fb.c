// fp32 1-row GEMV bandwidth of uk_f32_gemm over L packed K x N matrices vs uk_read_streams of the same bytes, T threads
// usage: fb LIB K N L T REPS
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <dlfcn.h>
#include <time.h>
#include <pthread.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef void(*g_t)(const float*,int64_t,int64_t,const float*,int64_t,float,float*,int64_t,int64_t,int);
typedef float(*r_t)(const float*,int64_t,int);
static g_t g; static r_t rd; static int64_t K,N,M=1; static int L,T,is,mode; static float**w; static float*a,*c; static size_t fl;
static pthread_barrier_t bar; static volatile float sink;
static void*work(void*p){int64_t t=(int64_t)p,G=(N+15)/16,g0=G*t/T,g1=G*(t+1)/T;
 for(int l=0;l<L;l++){ if(mode==0) g(a,M,K,w[l],N,1.f,c,g0,g1,is); else { size_t lo=fl*t/T, hi=fl*(t+1)/T; sink+=rd(w[l]+lo,hi-lo,4);} pthread_barrier_wait(&bar);} return NULL;}
int main(int argc,char**argv){void*h=dlopen(argv[1],RTLD_NOW);K=atoll(argv[2]);N=atoll(argv[3]);L=atoi(argv[4]);T=atoi(argv[5]);int reps=atoi(argv[6]); if(argc>7)M=atoll(argv[7]);
 size_t(*pf)(int64_t,int64_t)=dlsym(h,"uk_f32_packed_floats"); void(*pk)(int64_t,int64_t,const float*,float*)=dlsym(h,"uk_f32_pack");
 g=dlsym(h,"uk_f32_gemm"); rd=dlsym(h,"uk_read_streams"); int(*isa)(void)=dlsym(h,"uk_isa"); is=isa();
 fl=pf(K,N); float*b=malloc(K*N*4); for(int64_t i=0;i<K*N;i++)b[i]=(rand()%200-100)*0.01f;
 w=malloc(L*sizeof*w); for(int l=0;l<L;l++){w[l]=aligned_alloc(64,(fl*4+63)/64*64); pk(K,N,b,w[l]);}
 a=malloc(M*K*4); for(int i=0;i<M*K;i++)a[i]=0.5f; c=malloc(M*N*4); pthread_barrier_init(&bar,NULL,T);
 for(mode=0;mode<2;mode++){ double best=1e9; for(int r=0;r<reps;r++){pthread_t th[16]; double t0=now();
  for(int64_t t=1;t<T;t++)pthread_create(&th[t],NULL,work,(void*)t); work(0); for(int t=1;t<T;t++)pthread_join(th[t],NULL);
  double t=now()-t0; if(t<best)best=t;}
  printf("%s: %.2f ms %.1f GB/s  ", mode?"read4":"gemv", best*1e3, fl*4.0*L/best/1e9);} puts("");}
