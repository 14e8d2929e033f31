#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include "qmatmul_kernels.h"
#define T 2
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void* halloc(size_t b){size_t h=2<<20;void*p=aligned_alloc(h,(b+h-1)/h*h);madvise(p,(b+h-1)/h*h,MADV_HUGEPAGE);memset(p,0,b);return p;}
typedef struct {int k,n; float*w;} Mat;
static Mat mats[128]; static int nm;
static float a[8*5000], c[8*160000];
static atomic_int bar_count, bar_gen;
static void barrier(void){int g=atomic_load(&bar_gen); if(atomic_fetch_add(&bar_count,1)==T-1){atomic_store(&bar_count,0);atomic_fetch_add(&bar_gen,1);} else while(atomic_load(&bar_gen)==g);}
static int mode; /* 0 gemv pass, 1 probe */
static float* probe; static size_t probe_n; static int rows=1;
static void* work(void* arg){long id=(long)arg; 
  if(mode==1){size_t part=probe_n/T; uk_read_streams(probe+id*part,part,4); barrier(); return 0;}
  for(int i=0;i<nm;i++){Mat*m=&mats[i]; long P=(m->n+15)/16; long g0=P*id/T,g1=P*(id+1)/T;
    uk_f32_gemm(a,rows,m->k,m->w,m->n,1.f,c,g0,g1,2); barrier();}
  return 0;}
static double run(int md){mode=md;pthread_t th[T];double t0=now();for(long i=1;i<T;i++)pthread_create(&th[i],0,work,(void*)i);work(0);for(int i=1;i<T;i++)pthread_join(th[i],0);return now()-t0;}
int main(int argc,char**argv){int layers=argc>1?atoi(argv[1]):24; rows=argc>2?atoi(argv[2]):1; int reps=argc>3?atoi(argv[3]):10;
  int shp[5][2]={{896,1152},{896,896},{896,4864},{896,4864},{4864,896}}; double bytes=0;
  for(int l=0;l<layers;l++)for(int j=0;j<5;j++){Mat*m=&mats[nm++];m->k=shp[j][0];m->n=shp[j][1];size_t f=uk_f32_packed_floats(m->k,m->n);m->w=halloc(f*4);for(size_t q=0;q<f;q+=1024)m->w[q]=1e-3f;bytes+=f*4.0;}
  probe_n=(size_t)512<<18; probe=halloc(probe_n*4); for(size_t q=0;q<probe_n;q+=1024)probe[q]=1;
  for(int i=0;i<8*5000;i++)a[i]=0.01f;
  printf("weights %.0f MB, rows %d\n",bytes/1e6,rows);
  for(int r=0;r<reps;r++){double tg=run(0),tp=run(1); printf("gemv %.1f GB/s (%.2f ms)  probe %.1f GB/s  ratio %.2f\n",bytes/tg/1e9,tg*1e3,probe_n*4.0/tp/1e9,(bytes/tg)/(probe_n*4.0/tp));}
}
