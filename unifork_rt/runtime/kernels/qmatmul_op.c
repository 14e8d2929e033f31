/* unifork-rt: an ONNX Runtime custom-op library that runs com.microsoft MatMulNBits nodes (symmetric,
 * 4 or 8 bits, accuracy level 4) with the kernels of qmatmul_kernels.c, and com.microsoft
 * TransposeMatMul nodes (float A times a constant float B, no transposes) with those of
 * fmatmul_kernels.c, split over the session's intra-op threads (KernelContext_ParallelFor).
 *
 * TransposeMatMul is ONNX Runtime's older name of FusedMatMul (alpha * A . B, optional transposes),
 * still registered by its CPU provider. The ORT variant's fp32 graphs write their weight MatMuls as
 * TransposeMatMul (export/ort_graphs.py) so that this library takes exactly those: ONNX Runtime's own
 * optimizers make FusedMatMul nodes (from a MatMul and a Transpose or a scale), never TransposeMatMul.
 * Without this library the same graph runs on ONNX Runtime's kernel. It also runs com.microsoft
 * GroupQueryAttention as our graphs use it, with the kernel of attn_kernels.c (see that op below).
 *
 * ONNX Runtime's C API is a table of function pointers that only ever grows at its end, so a slot
 * keeps its index in every later release. This file declares the few slots it uses by index,
 * with their signatures, rather than including onnxruntime_c_api.h (which the pip wheels do not
 * ship). The indices and the OrtCustomOp layout were taken from the released headers of API 16-29
 * and checked against a live onnxruntime (docs/KERNELS.md). API 18 (onnxruntime 1.18) is the oldest
 * this needs: ParallelFor arrived in 17, the 26-slot OrtCustomOp in 18.
 */
#ifdef __linux__
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#endif
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "qmatmul_kernels.h"

typedef struct OrtStatus OrtStatus;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtValue OrtValue;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtSessionOptions OrtSessionOptions;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;

typedef struct {
  const void* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)(void);
} OrtApiBase;

#define UK_API_VERSION 18
enum {
  ERR_FAIL = 1, ERR_INVALID_ARGUMENT = 2, ERR_NOT_IMPLEMENTED = 9,
  TYPE_UNDEFINED = 0, TYPE_FLOAT = 1, TYPE_UINT8 = 2, TYPE_INT32 = 6, TYPE_INT64 = 7,
  IO_REQUIRED = 0, IO_OPTIONAL = 1,
};
/* OrtApi slots (0-based) */
enum {
  S_CreateStatus = 0, S_CreateCustomOpDomain = 26, S_CustomOpDomain_Add = 27, S_AddCustomOpDomain = 28,
  S_GetTensorMutableData = 51, S_GetDimensionsCount = 61, S_GetDimensions = 62, S_GetTensorTypeAndShape = 65,
  S_KernelInfoGetAttribute_float = 85, S_KernelInfoGetAttribute_int64 = 86, S_KernelContext_GetInputCount = 88, S_KernelContext_GetOutputCount = 89,
  S_KernelContext_GetInput = 90,
  S_KernelContext_GetOutput = 91, S_ReleaseStatus = 93, S_ReleaseTensorTypeAndShapeInfo = 99,
  S_KernelInfo_GetInputCount = 230, S_KernelInfoGetConstantInput_tensor = 249, S_KernelContext_ParallelFor = 274,
};
static void* const* g_api;
#define API(slot, type) ((type)g_api[slot])

typedef OrtStatus* (*CreateStatus_t)(int code, const char* msg);
typedef void (*ReleaseStatus_t)(OrtStatus*);
typedef OrtStatus* (*CreateCustomOpDomain_t)(const char*, OrtCustomOpDomain**);
typedef OrtStatus* (*CustomOpDomain_Add_t)(OrtCustomOpDomain*, const void* op);
typedef OrtStatus* (*AddCustomOpDomain_t)(OrtSessionOptions*, OrtCustomOpDomain*);
typedef OrtStatus* (*GetTensorMutableData_t)(OrtValue*, void**);
typedef OrtStatus* (*GetDimensionsCount_t)(const OrtTensorTypeAndShapeInfo*, size_t*);
typedef OrtStatus* (*GetDimensions_t)(const OrtTensorTypeAndShapeInfo*, int64_t*, size_t);
typedef OrtStatus* (*GetTensorTypeAndShape_t)(const OrtValue*, OrtTensorTypeAndShapeInfo**);
typedef void (*ReleaseTensorTypeAndShapeInfo_t)(OrtTensorTypeAndShapeInfo*);
typedef OrtStatus* (*KernelInfoGetAttribute_float_t)(const OrtKernelInfo*, const char*, float*);
typedef OrtStatus* (*KernelInfoGetAttribute_int64_t)(const OrtKernelInfo*, const char*, int64_t*);
typedef OrtStatus* (*KernelContext_GetInputCount_t)(const OrtKernelContext*, size_t*);
typedef OrtStatus* (*KernelContext_GetOutputCount_t)(const OrtKernelContext*, size_t*);
typedef OrtStatus* (*KernelContext_GetInput_t)(const OrtKernelContext*, size_t, const OrtValue**);
typedef OrtStatus* (*KernelContext_GetOutput_t)(OrtKernelContext*, size_t, const int64_t*, size_t, OrtValue**);
typedef OrtStatus* (*KernelInfo_GetInputCount_t)(const OrtKernelInfo*, size_t*);
typedef OrtStatus* (*KernelInfoGetConstantInput_tensor_t)(const OrtKernelInfo*, size_t, int*, const OrtValue**);
typedef OrtStatus* (*KernelContext_ParallelFor_t)(const OrtKernelContext*, void (*)(void*, size_t), size_t, size_t,
                                                   void*);

/* OrtCustomOp, 26 slots: version (padded to 8 bytes), then 25 function pointers */
typedef struct {
  uint32_t version;
  void* (*CreateKernel)(const void*, const void*, const OrtKernelInfo*);
  const char* (*GetName)(const void*);
  const char* (*GetExecutionProviderType)(const void*);
  int (*GetInputType)(const void*, size_t);
  size_t (*GetInputTypeCount)(const void*);
  int (*GetOutputType)(const void*, size_t);
  size_t (*GetOutputTypeCount)(const void*);
  void (*KernelCompute)(void*, OrtKernelContext*);
  void (*KernelDestroy)(void*);
  int (*GetInputCharacteristic)(const void*, size_t);
  int (*GetOutputCharacteristic)(const void*, size_t);
  int (*GetInputMemoryType)(const void*, size_t);
  int (*GetVariadicInputMinArity)(const void*);
  int (*GetVariadicInputHomogeneity)(const void*);
  int (*GetVariadicOutputMinArity)(const void*);
  int (*GetVariadicOutputHomogeneity)(const void*);
  OrtStatus* (*CreateKernelV2)(const void*, const void*, const OrtKernelInfo*, void**);
  OrtStatus* (*KernelComputeV2)(void*, OrtKernelContext*);
  void* InferOutputShapeFn;
  void* GetStartVersion;
  void* GetEndVersion;
  void* GetMayInplace;
  void* ReleaseMayInplace;
  void* GetAliasMap;
  void* ReleaseAliasMap;
} CustomOp;

__attribute__((format(printf, 2, 3))) static OrtStatus* fail(int code, const char* fmt, ...) {
  char msg[400];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof msg, fmt, args);
  va_end(args);
  return API(S_CreateStatus, CreateStatus_t)(code, msg);
}
#define CHECK(call)                  \
  do {                               \
    OrtStatus* st_ = (call);         \
    if (st_) return st_;             \
  } while (0)

typedef struct {
  uk_shape s;
  uint8_t* w;
  float* ws;
  int isa;
  int64_t tasks; /* task_count() when the session was created */
} Kernel;

/* inputs: A, B, scales, zero_points, g_idx, bias (the last three optional) */
static const char* op_name(const void* op) { (void)op; return "MatMulNBits"; }
static const char* op_ep(const void* op) { (void)op; return "CPUExecutionProvider"; }
static int op_input_type(const void* op, size_t i) { (void)op; return i == 0 || i == 2 || i == 5 ? TYPE_FLOAT : i == 1 ? TYPE_UINT8 : TYPE_UNDEFINED; }
static size_t op_input_count(const void* op) { (void)op; return 6; }
static int op_output_type(const void* op, size_t i) { (void)op; (void)i; return TYPE_FLOAT; }
static size_t op_output_count(const void* op) { (void)op; return 1; }
static int op_input_char(const void* op, size_t i) { (void)op; return i < 3 ? IO_REQUIRED : IO_OPTIONAL; }
static int op_output_char(const void* op, size_t i) { (void)op; (void)i; return IO_REQUIRED; }
static int op_mem_type(const void* op, size_t i) { (void)op; (void)i; return 0; }
static int op_zero(const void* op) { (void)op; return 0; }
static int op_one(const void* op) { (void)op; return 1; }

static void kernel_destroy(void* k) {
  Kernel* kr = (Kernel*)k;
  if (!kr) return;
  free(kr->w);
  free(kr->ws);
  free(kr);
}

static OrtStatus* constant_value(const OrtKernelInfo* info, size_t i, void** data, const OrtValue** value) {
  int is_const = 0;
  const OrtValue* v = NULL;
  *data = NULL;
  CHECK(API(S_KernelInfoGetConstantInput_tensor, KernelInfoGetConstantInput_tensor_t)(info, i, &is_const, &v));
  if (!is_const || !v) return NULL;
  if (value) *value = v;
  return API(S_GetTensorMutableData, GetTensorMutableData_t)((OrtValue*)v, data);
}

static OrtStatus* constant_input(const OrtKernelInfo* info, size_t i, void** data) {
  return constant_value(info, i, data, NULL);
}

/* the dimensions of a tensor value of rank MIN_RANK to 8 */
static OrtStatus* value_dims_from(const OrtValue* v, int64_t* dims, size_t* rank, const char* what, size_t min_rank) {
  OrtTensorTypeAndShapeInfo* info = NULL;
  CHECK(API(S_GetTensorTypeAndShape, GetTensorTypeAndShape_t)(v, &info));
  OrtStatus* st = API(S_GetDimensionsCount, GetDimensionsCount_t)(info, rank);
  if (!st && (*rank < min_rank || *rank > 8))
    st = fail(ERR_INVALID_ARGUMENT, "unifork-rt: %s has rank %zu (%zu to 8)", what, *rank, min_rank);
  if (!st) st = API(S_GetDimensions, GetDimensions_t)(info, dims, *rank);
  API(S_ReleaseTensorTypeAndShapeInfo, ReleaseTensorTypeAndShapeInfo_t)(info);
  return st;
}

static OrtStatus* value_dims(const OrtValue* v, int64_t* dims, size_t* rank, const char* what) {
  return value_dims_from(v, dims, rank, what, 1);
}

/* ONNX Runtime maps a bundle's external weights from their .onnx.data file (private, read-only in use).
 * Once packed, the original bytes are never read again, but the pages that packing touched stay resident,
 * so the weights would be held twice. Where the range lies inside one file-backed mapping, drop those
 * pages: a later read (there is none) would fault them in again from the file. Memory that is not
 * file-backed (weights inside the .onnx, or copied) is left alone: dropping it would lose its contents. */
static void release_if_file_backed(const void* ptr, size_t bytes) {
#ifdef __linux__
  uintptr_t lo = (uintptr_t)ptr, hi = lo + bytes;
  FILE* f = fopen("/proc/self/maps", "r");
  if (!f) return;
  char line[512];
  int file_backed = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long start, end, offset, inode;
    char perms[8], dev[16], path[256] = "";
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %255s", &start, &end, perms, &offset, dev, &inode, path) < 6)
      continue;
    if (start <= lo && hi <= end) {
      file_backed = inode != 0 && path[0] == '/' && perms[3] == 'p';
      break;
    }
  }
  fclose(f);
  if (!file_backed) return;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = (lo + page - 1) / page * page, b = hi / page * page;
  if (b > a) madvise((void*)a, b - a, MADV_DONTNEED);
#else
  (void)ptr;
  (void)bytes;
#endif
}

/* Memory for packed weights: 64-byte aligned; a buffer of 2 MB or more starts on a 2 MB boundary and its
 * whole 2 MB pages are marked for transparent huge pages (where the kernel allows it: "madvise" or
 * "always"). The kernels stream gigabytes through these buffers: a float GEMV alone read 30.1 GB/s with
 * 4 KB pages and 37.4 with 2 MB ones (medians of 8 noisy runs, docs/KERNELS.md). The tail past the last whole 2 MB
 * page keeps small pages, so nothing is held that the weights do not fill. */
static void* alloc_weights(size_t bytes) {
  const size_t huge = (size_t)2 << 20;
  bytes = bytes ? (bytes + 63) / 64 * 64 : 64;
  if (bytes < huge) return aligned_alloc(64, bytes);
  void* p = aligned_alloc(huge, bytes);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p) madvise(p, bytes / huge * huge, MADV_HUGEPAGE);
#endif
  return p;
}

/* How many tasks each MatMulNBits is split into: the intra-op thread count of the session, so that each
 * thread walks one long range of columns (the tiles read it as several streams, qmatmul_kernels.c). The
 * C API does not tell an op its pool's size, so the Python backend sets it through ctypes on this same
 * library, on the thread that then creates the session (kernels are created there, and read it). Unset
 * (0): one task per CPU the creating thread may run on (its affinity mask; 64 where that is unknown).
 * At most 64. */
static __thread int g_session_threads;

void uk_set_session_threads(int threads) { g_session_threads = threads > 0 ? threads : 0; }

static int64_t task_count(void) {
  int64_t n = g_session_threads;
#ifdef __linux__
  cpu_set_t set;
  if (n <= 0 && sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
#endif
  if (n <= 0) n = 64;
  return n > 64 ? 64 : n;
}

/* task i of `tasks`: the range [*lo, *hi) of `total` units (column groups or panels) */
static void task_range(int64_t total, size_t i, size_t tasks, int64_t* lo, int64_t* hi) {
  *lo = total * (int64_t)i / (int64_t)tasks;
  *hi = total * (int64_t)(i + 1) / (int64_t)tasks;
}

/* an optional attribute, or ABSENT where the node does not set it */
static int64_t int_attr(const OrtKernelInfo* info, const char* name, int64_t absent) {
  int64_t v = absent;
  OrtStatus* st = API(S_KernelInfoGetAttribute_int64, KernelInfoGetAttribute_int64_t)(info, name, &v);
  if (st) { API(S_ReleaseStatus, ReleaseStatus_t)(st); v = absent; }
  return v;
}

static float float_attr(const OrtKernelInfo* info, const char* name, float absent) {
  float v = absent;
  OrtStatus* st = API(S_KernelInfoGetAttribute_float, KernelInfoGetAttribute_float_t)(info, name, &v);
  if (st) { API(S_ReleaseStatus, ReleaseStatus_t)(st); v = absent; }
  return v;
}

static OrtStatus* kernel_create(const void* op, const void* api, const OrtKernelInfo* info, void** out) {
  (void)op; (void)api;
  int64_t k, n, bits, block;
  KernelInfoGetAttribute_int64_t attr = API(S_KernelInfoGetAttribute_int64, KernelInfoGetAttribute_int64_t);
  CHECK(attr(info, "K", &k));
  CHECK(attr(info, "N", &n));
  CHECK(attr(info, "bits", &bits));
  CHECK(attr(info, "block_size", &block));
  const int64_t level = int_attr(info, "accuracy_level", 0);
  if ((bits != 4 && bits != 8) || block < 16 || block % 16)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt qmatmul: MatMulNBits with bits=%lld, block_size=%lld is not supported "
                "(4 or 8 bits, blocks a multiple of 16): set UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel", (long long)bits,
                (long long)block);
  if (level != 4)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt qmatmul: MatMulNBits accuracy_level=%lld asks for float activations; "
                "these kernels quantize them to int8 (level 4): set UNIFORK_RT_QMATMUL=0", (long long)level);
  size_t count = 0;
  CHECK(API(S_KernelInfo_GetInputCount, KernelInfo_GetInputCount_t)(info, &count));
  for (size_t i = 3; i < count && i < 5; i++) {
    void* extra = NULL;
    CHECK(constant_input(info, i, &extra));
    if (extra)
      return fail(ERR_NOT_IMPLEMENTED, "unifork-rt qmatmul: MatMulNBits input %zu (zero points or g_idx) is not "
                  "supported (symmetric weights only): set UNIFORK_RT_QMATMUL=0", i);
  }
  void *b = NULL, *scales = NULL;
  CHECK(constant_input(info, 1, &b));
  CHECK(constant_input(info, 2, &scales));
  if (!b || !scales)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt qmatmul: MatMulNBits weights and scales must be initializers (%s is "
                "computed): set UNIFORK_RT_QMATMUL=0", b ? "the scales input" : "the weight input");
  Kernel* kr = (Kernel*)calloc(1, sizeof(Kernel));
  if (!kr) return fail(ERR_FAIL, "unifork-rt qmatmul: out of memory");
  kr->s.bits = (int)bits;
  kr->s.block = (int)block;
  kr->s.k = k;
  kr->s.n = n;
  kr->s.kp = (k + block - 1) / block * block;
  kr->s.np = (n + 15) / 16 * 16;
  kr->isa = uk_isa();
  kr->tasks = task_count();
  size_t wbytes = uk_packed_bytes(&kr->s), sfloats = uk_packed_scales(&kr->s);
  kr->w = (uint8_t*)alloc_weights(wbytes);
  kr->ws = (float*)aligned_alloc(64, (sfloats * 4 + 63) / 64 * 64);
  if (!kr->w || !kr->ws) {
    kernel_destroy(kr);
    return fail(ERR_FAIL, "unifork-rt qmatmul: out of memory packing %lld x %lld weights", (long long)n, (long long)k);
  }
  uk_pack(&kr->s, (const uint8_t*)b, (const float*)scales, kr->w, kr->ws);
  release_if_file_backed(b, (size_t)n * (size_t)(kr->s.kp * bits / 8));
  *out = kr;
  return NULL;
}

/* one integer GEMM split into tasks: MatMulNBits, or the integer ops below (with their column terms, cadd) */
typedef struct {
  const uk_shape* s;
  const uint8_t* w;
  const float* ws;
  int isa;
  const void* scratch;
  const int32_t* cadd;
  int64_t m, groups;
  size_t tasks;
  const float* bias;
  float* c;
  int wide; /* the integer ops on AVX2: their rows split (uk_gemm_cadd) */
} Task;

static void run_task(void* p, size_t i) {
  const Task* t = (const Task*)p;
  int64_t g0, g1;
  task_range(t->groups, i, t->tasks, &g0, &g1);
  if (g1 <= g0) return;
  if (t->cadd) uk_gemm_cadd(t->s, t->scratch, t->m, t->w, t->ws, t->bias, t->cadd, t->c, g0, g1, t->isa, t->wide);
  else uk_gemm(t->s, t->scratch, t->m, t->w, t->ws, t->bias, t->c, g0, g1, t->isa);
}

/* A [..., K] times weights of K rows and N columns: the rows m of A, and its data and Y's [..., N] (made here);
 * *ap and *yp are left NULL when A has no rows */
static OrtStatus* matmul_io(OrtKernelContext* ctx, const OrtValue* a, int64_t k, int64_t n, const char* what,
                            int64_t* m, void** ap, void** yp) {
  size_t rank = 0;
  int64_t dims[8];
  *ap = *yp = NULL;
  CHECK(value_dims(a, dims, &rank, "input A"));
  if (dims[rank - 1] != k)
    return fail(ERR_INVALID_ARGUMENT, "unifork-rt: %s input A has %lld columns, its weights %lld rows", what,
                (long long)dims[rank - 1], (long long)k);
  *m = 1;
  for (size_t i = 0; i + 1 < rank; i++) *m *= dims[i];
  dims[rank - 1] = n;
  OrtValue* y = NULL;
  CHECK(API(S_KernelContext_GetOutput, KernelContext_GetOutput_t)(ctx, 0, dims, rank, &y));
  if (*m == 0) return NULL;
  CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)((OrtValue*)a, ap));
  return API(S_GetTensorMutableData, GetTensorMutableData_t)(y, yp);
}

static OrtStatus* kernel_compute(void* k, OrtKernelContext* ctx) {
  const Kernel* kr = (const Kernel*)k;
  const OrtValue *a = NULL, *bias = NULL;
  CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, 0, &a));
  size_t count = 0;
  CHECK(API(S_KernelContext_GetInputCount, KernelContext_GetInputCount_t)(ctx, &count));
  if (count > 5) CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, 5, &bias));
  int64_t m = 0;
  void *ap = NULL, *yp = NULL, *bp = NULL;
  CHECK(matmul_io(ctx, a, kr->s.k, kr->s.n, "MatMulNBits", &m, &ap, &yp));
  if (m == 0) return NULL;
  if (bias) CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)((OrtValue*)bias, &bp));
  void* scratch = aligned_alloc(64, (uk_scratch_bytes(&kr->s, m) + 63) / 64 * 64);
  if (!scratch) return fail(ERR_FAIL, "unifork-rt qmatmul: out of memory for %lld rows of %lld", (long long)m, (long long)kr->s.k);
  uk_quantize(&kr->s, (const float*)ap, m, scratch);
  Task t = {&kr->s, kr->w, kr->ws, kr->isa, scratch, NULL, m, kr->s.np / 16, 0, (const float*)bp, (float*)yp};
  /* one task per thread of the session (task_count); 64 small tasks, as before, were 1.5x slower at one
   * row (docs/KERNELS.md, "Several streams") */
  t.tasks = (size_t)(t.groups < kr->tasks ? t.groups : kr->tasks);
  OrtStatus* st = API(S_KernelContext_ParallelFor, KernelContext_ParallelFor_t)(ctx, run_task, t.tasks, 0, &t);
  free(scratch);
  return st;
}

/* ---- TransposeMatMul: float A times a constant float B [K][N] ---- */

typedef struct {
  int64_t k, n;
  float alpha;
  float* w; /* packed panels, fmatmul_kernels.c */
  int isa;
  int64_t tasks;
} FKernel;

static const char* fop_name(const void* op) { (void)op; return "TransposeMatMul"; }
static int fop_type(const void* op, size_t i) { (void)op; (void)i; return TYPE_FLOAT; }
static size_t fop_input_count(const void* op) { (void)op; return 2; }
static int fop_input_char(const void* op, size_t i) { (void)op; (void)i; return IO_REQUIRED; }

static void fkernel_destroy(void* k) {
  FKernel* kr = (FKernel*)k;
  if (!kr) return;
  free(kr->w);
  free(kr);
}

static OrtStatus* fkernel_create(const void* op, const void* api, const OrtKernelInfo* info, void** out) {
  (void)op; (void)api;
  static const char* const flags[] = {"transA", "transB", "transBatchA", "transBatchB"};
  for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
    const int64_t v = int_attr(info, flags[i], 0);
    if (v)
      return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: TransposeMatMul with %s=%lld is not supported (A . B only): set "
                  "UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel", flags[i], (long long)v);
  }
  const float alpha = float_attr(info, "alpha", 1.f);
  void* b = NULL;
  const OrtValue* bv = NULL;
  CHECK(constant_value(info, 1, &b, &bv));
  if (!bv) /* an empty initializer has a value, perhaps no data */
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: TransposeMatMul input B must be an initializer (it is computed): set "
                "UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel");
  int64_t dims[8];
  size_t rank = 0;
  CHECK(value_dims(bv, dims, &rank, "TransposeMatMul input B"));
  if (rank != 2)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: TransposeMatMul input B has rank %zu (2 is supported): set "
                "UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel", rank);
  FKernel* kr = (FKernel*)calloc(1, sizeof(FKernel));
  if (!kr) return fail(ERR_FAIL, "unifork-rt: out of memory");
  const int64_t kk = dims[0], nn = dims[1];  /* K = 0: the tiles store zeros */
  kr->k = kk;
  kr->n = nn;
  kr->alpha = alpha;
  kr->isa = uk_isa();
  kr->tasks = task_count();
  kr->w = (float*)alloc_weights(uk_f32_packed_floats(kr->k, kr->n) * sizeof(float));
  if (!kr->w) {
    fkernel_destroy(kr);
    return fail(ERR_FAIL, "unifork-rt: out of memory packing %lld x %lld weights", (long long)kk, (long long)nn);
  }
  uk_f32_pack(kr->k, kr->n, (const float*)b, kr->w);
  release_if_file_backed(b, (size_t)kr->k * (size_t)kr->n * sizeof(float));
  *out = kr;
  return NULL;
}

typedef struct {
  const FKernel* kr;
  const float* a;
  int64_t m, panels;
  size_t tasks;
  float* c;
} FTask;

static void run_ftask(void* p, size_t i) {
  const FTask* t = (const FTask*)p;
  int64_t g0, g1;
  task_range(t->panels, i, t->tasks, &g0, &g1);
  if (g1 > g0) uk_f32_gemm(t->a, t->m, t->kr->k, t->kr->w, t->kr->n, t->kr->alpha, t->c, g0, g1, t->kr->isa);
}

static OrtStatus* fkernel_compute(void* k, OrtKernelContext* ctx) {
  const FKernel* kr = (const FKernel*)k;
  const OrtValue* a = NULL;
  CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, 0, &a));
  size_t rank = 0;
  int64_t dims[8];
  CHECK(value_dims(a, dims, &rank, "TransposeMatMul input A"));
  if (dims[rank - 1] != kr->k)
    return fail(ERR_INVALID_ARGUMENT, "unifork-rt: TransposeMatMul input A has %lld columns, B %lld rows",
                (long long)dims[rank - 1], (long long)kr->k);
  int64_t m = 1;
  for (size_t i = 0; i + 1 < rank; i++) m *= dims[i];
  dims[rank - 1] = kr->n; /* as MatMul: A [..., K] . B [K, N] is [..., N] (a 1-D A gives [N]) */
  OrtValue* y = NULL;
  CHECK(API(S_KernelContext_GetOutput, KernelContext_GetOutput_t)(ctx, 0, dims, rank, &y));
  if (m == 0 || kr->n == 0) return NULL;
  void *ap = NULL, *yp = NULL;
  CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)((OrtValue*)a, &ap));
  CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)(y, &yp));
  FTask t = {kr, (const float*)ap, m, (kr->n + 15) / 16, 0, (float*)yp};
  t.tasks = (size_t)(t.panels < kr->tasks ? t.panels : kr->tasks);
  return API(S_KernelContext_ParallelFor, KernelContext_ParallelFor_t)(ctx, run_ftask, t.tasks, 0, &t);
}

/* ---- DynamicQuantizeMatMul and MatMulIntegerToFloat (com.microsoft) on the 8-bit tiles ----
 * ONNX Runtime fuses the int8-dynamic bundles' DynamicQuantizeLinear + MatMulInteger + scaling into these
 * two ops: A quantized per tensor to uint8 (scale, zero point zp), B a constant int8 [K][N] with a scale per
 * tensor or per column and no zero point: Y = (A_q - zp) . B * a_scale * b_scale + bias. B is packed once as
 * 8-bit weights + 128 in one block of K, and A as int8 a - 128, so the VNNI tile computes
 * sum (a - 128) * b exactly (its zero-point sum takes the + 128 out, as for MatMulNBits); the rest,
 * (128 - zp) * (the column sums of B), is added to each column's integer sum before it is scaled
 * (uk_gemm_cadd), so that, as in ONNX Runtime, one exact integer is converted:
 *   Y[r][n] = float(sum_k (a - 128) b + (128 - zp) colsum[n]) * (b_scale[n] * a_scale) + bias[n].
 * (Added in float instead, the two large terms cancelled: 3.6e-4 relative error on an all-zero A; a hostile
 * review, 2026-12-05.) DynamicQuantizeMatMul
 * quantizes A first as ONNX Runtime does (the range widened to include 0, scale (max - min) / 255, zero point
 * and values rounded half to even). B with a zero point other than 0, uint8, not constant, or a K that is
 * not a multiple of 16 or over 32768: refused at session creation, and ONNX Runtime's kernel runs the graph.
 * On AVX2 CPUs (since session 50; AVX-512 VNNI only before) the rows stay uint8 a and the tiles (AVX2_CTILE)
 * multiply them by B in VPMADDUBSW: in one product a row while |B| <= 64 (ONNX Runtime's reduce_range weights,
 * which our exports write), else in two, a >> 1 and a & 1 (wide); the column term is then -zp * (the column
 * sums), and each column gets the integer the VNNI path gets. */
typedef struct {
  uk_shape s;
  uint8_t* w;
  float* ws;      /* b_scale per column, in the packed order */
  int32_t* colsum; /* sum_k B[k][n], np of them (0 past n) */
  int isa, dynamic, bzp_const;
  int wide; /* AVX2 with a |B| over 64: the rows as a >> 1 and a & 1 (uk_gemm_cadd) */
  int64_t tasks;
} IKernel;

enum { TYPE_INT8 = 3 };
/* DynamicQuantizeMatMul: A (float), B (int8), b_scale (float), b_zero_point (int8, optional), bias (optional);
 * MatMulIntegerToFloat: A (uint8), B (int8), a_scale, b_scale (float), a_zero_point (uint8), b_zero_point (int8),
 * bias (float; the last three optional) */
static const char* dop_name(const void* op) { (void)op; return "DynamicQuantizeMatMul"; }
static int dop_input_type(const void* op, size_t i) { (void)op; return i == 1 || i == 3 ? TYPE_INT8 : TYPE_FLOAT; }
static size_t dop_input_count(const void* op) { (void)op; return 5; }
static int dop_input_char(const void* op, size_t i) { (void)op; return i < 3 ? IO_REQUIRED : IO_OPTIONAL; }
static const char* mop_name(const void* op) { (void)op; return "MatMulIntegerToFloat"; }
static int mop_input_type(const void* op, size_t i) {
  (void)op;
  return i == 0 || i == 4 ? TYPE_UINT8 : i == 1 || i == 5 ? TYPE_INT8 : TYPE_FLOAT;
}
static size_t mop_input_count(const void* op) { (void)op; return 7; }
static int mop_input_char(const void* op, size_t i) { (void)op; return i < 4 ? IO_REQUIRED : IO_OPTIONAL; }

static void ikernel_destroy(void* k) {
  IKernel* kr = (IKernel*)k;
  if (!kr) return;
  free(kr->w);
  free(kr->ws);
  free(kr->colsum);
  free(kr);
}

static int64_t elements(const int64_t* d, size_t r) {
  int64_t n = 1;
  for (size_t i = 0; i < r; i++) n *= d[i];
  return n;
}

/* the element count of a value */
static OrtStatus* value_count(const OrtValue* v, int64_t* count, const char* what) {
  int64_t dims[8];
  size_t rank = 0;
  CHECK(value_dims_from(v, dims, &rank, what, 0));
  *count = elements(dims, rank);
  return NULL;
}

static OrtStatus* ikernel_create_as(const OrtKernelInfo* info, int dynamic, void** out) {
  const char* name = dynamic ? "DynamicQuantizeMatMul" : "MatMulIntegerToFloat";
  const size_t b_scale_at = dynamic ? 2 : 3, b_zp_at = dynamic ? 3 : 5;
  void *b = NULL, *bs = NULL, *bzp = NULL;
  const OrtValue *bv = NULL, *bsv = NULL, *bzpv = NULL;
  CHECK(constant_value(info, 1, &b, &bv));
  CHECK(constant_value(info, b_scale_at, &bs, &bsv));
  if (!bv || !bsv)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: %s needs B and b_scale as initializers: set UNIFORK_RT_QMATMUL=0 "
                "to use ONNX Runtime's kernel", name);
  size_t count = 0;
  CHECK(API(S_KernelInfo_GetInputCount, KernelInfo_GetInputCount_t)(info, &count));
  if (b_zp_at < count) CHECK(constant_value(info, b_zp_at, &bzp, &bzpv));
  int64_t dims[8];
  size_t rank = 0;
  CHECK(value_dims(bv, dims, &rank, "B"));
  /* K at most 32768: one int32 sum of (b + 128) * (a - 128) over K stays under 255 * 128 * 32768 = 2^30 */
  if (rank != 2 || dims[0] % 16 || dims[0] == 0 || dims[0] > 32768 || dims[1] == 0)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: %s with B of rank %zu, K %lld is not supported (2-D, K a multiple "
                "of 16 up to 32768): set UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel", name, rank,
                (long long)dims[0]);
  const int64_t k = dims[0], n = dims[1];
  int64_t ns = 0;
  CHECK(value_count(bsv, &ns, "b_scale"));
  if (ns != 1 && ns != n)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: %s with %lld b_scale values for %lld columns is not supported: set "
                "UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel", name, (long long)ns, (long long)n);
  if (bzpv) {
    int64_t nz = 0;
    CHECK(value_count(bzpv, &nz, "b_zero_point"));
    if (nz != 1 && nz != n)
      return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: %s with %lld B zero points for %lld columns is not supported: set "
                  "UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel", name, (long long)nz, (long long)n);
    for (int64_t i = 0; i < nz; i++)
      if (((const int8_t*)bzp)[i])
        return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: %s with a B zero point other than 0 is not supported: set "
                    "UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel", name);
  }
  IKernel* kr = (IKernel*)calloc(1, sizeof(IKernel));
  if (!kr) return fail(ERR_FAIL, "unifork-rt: out of memory");
  kr->s = (uk_shape){.bits = 8, .block = (int)k, .k = k, .n = n, .kp = k, .np = (n + 15) / 16 * 16};
  kr->isa = uk_isa();
  kr->tasks = task_count();
  kr->dynamic = dynamic;
  kr->bzp_const = bzpv != NULL;
  /* MatMulNBits' layout, one block per column: [n][k] bytes B + 128 */
  uint8_t* src = (uint8_t*)malloc((size_t)n * (size_t)k);
  float* bscale = (float*)malloc((size_t)n * sizeof(float)); /* b_scale per column [n], for uk_pack */
  kr->colsum = (int32_t*)calloc((size_t)kr->s.np, sizeof(int32_t));
  kr->w = (uint8_t*)alloc_weights(uk_packed_bytes(&kr->s));
  kr->ws = (float*)aligned_alloc(64, (uk_packed_scales(&kr->s) * 4 + 63) / 64 * 64);
  if (!src || !bscale || !kr->colsum || !kr->w || !kr->ws) {
    free(src);
    free(bscale);
    ikernel_destroy(kr);
    return fail(ERR_FAIL, "unifork-rt: out of memory packing %lld x %lld weights", (long long)k, (long long)n);
  }
  /* B [k][n] to [n][k] + 128, in 64 x 64 tiles (a plain loop wrote k bytes apart: 0.9 s more to load a
   * paper und_branch) */
  const int8_t* bb = (const int8_t*)b;
  int bmax = 0; /* the largest |B| */
  for (int64_t k0 = 0; k0 < k; k0 += 64)
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
      const int64_t k1 = k0 + 64 < k ? k0 + 64 : k, j1 = j0 + 64 < n ? j0 + 64 : n;
      for (int64_t j = j0; j < j1; j++) {
        int32_t sum = 0;
        for (int64_t kk = k0; kk < k1; kk++) {
          const int8_t v = bb[kk * n + j];
          src[j * k + kk] = (uint8_t)(v + 128);
          sum += v;
          bmax = v > bmax ? v : -v > bmax ? -v : bmax;
        }
        kr->colsum[j] += sum;
      }
    }
  kr->wide = kr->isa == UK_ISA_AVX2 && bmax > 64; /* AVX2: a split in a >> 1 and a & 1 (AVX2_CTILE) */
  for (int64_t j = 0; j < n; j++) bscale[j] = ((const float*)bs)[ns == 1 ? 0 : j];
  uk_pack(&kr->s, src, bscale, kr->w, kr->ws);
  free(src);
  free(bscale);
  release_if_file_backed(b, (size_t)n * (size_t)k);
  *out = kr;
  return NULL;
}

static OrtStatus* dkernel_create(const void* op, const void* api, const OrtKernelInfo* info, void** out) {
  (void)op; (void)api;
  return ikernel_create_as(info, 1, out);
}
static OrtStatus* mkernel_create(const void* op, const void* api, const OrtKernelInfo* info, void** out) {
  (void)op; (void)api;
  return ikernel_create_as(info, 0, out);
}

/* ONNX Runtime's per-tensor uint8 parameters of X (dynamic_quantize_matmul.cc, GetQuantizationParameter) */
static void quant_params(const float* x, int64_t count, float* scale, uint8_t* zp) {
  float lo = 0.f, hi = 0.f;
  uk_range0(x, count, &lo, &hi);
  *scale = hi == lo ? 1.f : (hi - lo) / 255.f;
  float z = 0.f - lo / *scale;
  /* std::max(qmin, std::min(qmax, z)) as ONNX Runtime writes it: a NaN z (an infinite A) becomes 255 */
  z = z < 255.f ? z : 255.f;
  z = 0.f < z ? z : 0.f;
  *zp = (uint8_t)nearbyintf(z);
}

static OrtStatus* ikernel_compute(void* k, OrtKernelContext* ctx) {
  const IKernel* kr = (const IKernel*)k;
  const char* name = kr->dynamic ? "DynamicQuantizeMatMul" : "MatMulIntegerToFloat";
  const OrtValue *a = NULL, *as_v = NULL, *azp_v = NULL, *bias_v = NULL;
  size_t count = 0;
  CHECK(API(S_KernelContext_GetInputCount, KernelContext_GetInputCount_t)(ctx, &count));
  CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, 0, &a));
  const size_t bias_at = kr->dynamic ? 4 : 6;
  if (bias_at < count) CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, bias_at, &bias_v));
  const size_t bzp_at = kr->dynamic ? 3 : 5;
  if (!kr->bzp_const && bzp_at < count) { /* given, but not an initializer: not known at load */
    const OrtValue* bzp_v = NULL;
    CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, bzp_at, &bzp_v));
    if (bzp_v)
      return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: %s with a computed B zero point is not supported (an initializer "
                  "of zeros is): set UNIFORK_RT_QMATMUL=0 to use ONNX Runtime's kernel", name);
  }
  if (!kr->dynamic) {
    CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, 2, &as_v));
    if (4 < count) CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, 4, &azp_v));
  }
  int64_t m = 0;
  void *ap = NULL, *yp = NULL, *bp = NULL;
  CHECK(matmul_io(ctx, a, kr->s.k, kr->s.n, name, &m, &ap, &yp));
  if (m == 0) return NULL;
  if (bias_v) {
    int64_t nb_ = 0;
    CHECK(value_count(bias_v, &nb_, "bias"));
    if (nb_ != kr->s.n)
      return fail(ERR_INVALID_ARGUMENT, "unifork-rt: %s bias has %lld values for %lld columns", name, (long long)nb_,
                  (long long)kr->s.n);
    CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)((OrtValue*)bias_v, &bp));
  }
  const int64_t kk = kr->s.k;
  float a_scale = 1.f;
  uint8_t zp = 0;
  if (kr->dynamic) {
    quant_params((const float*)ap, m * kk, &a_scale, &zp);
  } else {
    int64_t c = 0;
    void* p = NULL;
    CHECK(value_count(as_v, &c, "a_scale"));
    if (c != 1)
      return fail(ERR_INVALID_ARGUMENT, "unifork-rt: %s with %lld a_scale values (one per tensor is supported): set "
                  "UNIFORK_RT_QMATMUL=0", name, (long long)c);
    CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)((OrtValue*)as_v, &p));
    a_scale = *(const float*)p;
    if (azp_v) {
      CHECK(value_count(azp_v, &c, "a_zero_point"));
      if (c != 1)
        return fail(ERR_INVALID_ARGUMENT, "unifork-rt: %s with %lld A zero points (one per tensor is supported): "
                    "set UNIFORK_RT_QMATMUL=0", name, (long long)c);
      CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)((OrtValue*)azp_v, &p));
      zp = *(const uint8_t*)p;
    }
  }
  /* the tile's scratch (uk_scratch_bytes): scales [m][1], zero-point sums [m][1], rows [m][k] of a - 128 (on AVX2
   * uint8 a, or a >> 1 followed by [m][k] of a & 1 where wide: uk_gemm_cadd); then the column terms [np] */
  const size_t rows_end = uk_scratch_bytes(&kr->s, m) + (kr->wide ? (size_t)m * (size_t)kk : 0);
  char* scratch = (char*)aligned_alloc(64, (rows_end + (size_t)kr->s.np * 4 + 63) / 64 * 64);
  if (!scratch) return fail(ERR_FAIL, "unifork-rt: out of memory for %lld rows of %lld", (long long)m, (long long)kk);
  float* ras = (float*)scratch;
  int32_t* rzs = (int32_t*)(ras + m);
  int8_t* qa = (int8_t*)(rzs + m);
  int32_t* cadd = (int32_t*)(scratch + (rows_end + 3) / 4 * 4);
  const int32_t shift = kr->isa == UK_ISA_AVX2 ? 0 : 128; /* the rows: a - shift (the AVX2 tiles sum a * B) */
  for (int64_t r = 0; r < m; r++) {
    int32_t sum = 0;
    int8_t* q = qa + r * kk;
    if (kr->dynamic) {
      sum = uk_quantize_u8((const float*)ap + r * kk, kk, a_scale, zp, shift, q);
    } else if (kr->isa == UK_ISA_AVX2) {
      memcpy(q, (const uint8_t*)ap + r * kk, (size_t)kk);
    } else {
      const uint8_t* x = (const uint8_t*)ap + r * kk;
      for (int64_t i = 0; i < kk; i++) {
        q[i] = (int8_t)((int)x[i] - 128);
        sum += q[i];
      }
    }
    ras[r] = a_scale;
    rzs[r] = 128 * sum;
    if (kr->wide) {
      uint8_t *hi = (uint8_t*)q, *lo = (uint8_t*)qa + (size_t)(m + r) * (size_t)kk;
      for (int64_t i = 0; i < kk; i++) {
        lo[i] = hi[i] & 1;
        hi[i] >>= 1;
      }
    }
  }
  for (int64_t j = 0; j < kr->s.np; j++) cadd[j] = (shift - (int32_t)zp) * kr->colsum[j]; /* |.| < 255 * 128 * 32768 */
  Task t = {&kr->s, kr->w, kr->ws, kr->isa, scratch, cadd, m, kr->s.np / 16, 0, (const float*)bp, (float*)yp, kr->wide};
  t.tasks = (size_t)(t.groups < kr->tasks ? t.groups : kr->tasks);
  OrtStatus* st = API(S_KernelContext_ParallelFor, KernelContext_ParallelFor_t)(ctx, run_task, t.tasks, 0, &t);
  free(scratch);
  return st;
}

/* ---- GroupQueryAttention (com.microsoft) on attn_kernels.c ----
 * What our `--graphs ort` graphs use (export/ort_graphs.py): float32 Q, K, V packed in the query input or
 * separate, a float cache bound as both past and present (or a separate present, which gets a copy),
 * rotate_half rotary with position_ids, an additive attention_bias, query_seqlens all equal to T. Any
 * other attribute fails at session creation (the backend then loads that graph without this library, our
 * matmul kernels included, and says so); the inputs this kernel does not take (head_sink, KV scales, Q/K
 * norms) fail the run. Both name UNIFORK_RT_ATTENTION=0, which keeps ONNX Runtime's kernel for this op only. */

enum { GQA_INPUTS = 17, GQA_OUTPUTS = 4 };
typedef struct {
  int64_t hq, hkv, rotary;
  float scale; /* 0: 1/sqrt(head size) */
  int isa;
  int64_t tasks; /* the session's threads (task_count): a step has at least this many tasks where it has the pairs */
} AKernel;

static const char* aop_name(const void* op) { (void)op; return "GroupQueryAttention"; }
static int aop_input_type(const void* op, size_t i) {
  (void)op;
  return i == 5 || i == 6 || i == 16 ? TYPE_INT32 : i == 9 ? TYPE_INT64 : TYPE_FLOAT;
}
static size_t aop_input_count(const void* op) { (void)op; return GQA_INPUTS; }
static int aop_input_char(const void* op, size_t i) { (void)op; return i == 0 || i == 5 || i == 6 ? IO_REQUIRED : IO_OPTIONAL; }
static size_t aop_output_count(const void* op) { (void)op; return GQA_OUTPUTS; }
static int aop_output_char(const void* op, size_t i) { (void)op; return i == 0 ? IO_REQUIRED : IO_OPTIONAL; }
static void akernel_destroy(void* k) { free(k); }

static OrtStatus* akernel_create(const void* op, const void* api, const OrtKernelInfo* info, void** out) {
  (void)op; (void)api;
  /* attribute, the only value taken (its default) */
  static const struct { const char* name; int64_t ok; } fixed[] = {
    {"rotary_interleaved", 0}, {"local_window_size", -1}, {"smooth_softmax", 0}, {"qk_output", 0},
    {"kv_cache_bit_width", 0}, {"sliding_window_cache", 0}, {"causal", 1}};
  for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
    int64_t v = int_attr(info, fixed[i].name, fixed[i].ok);
    if (v != fixed[i].ok)
      return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: GroupQueryAttention with %s=%lld is not supported: set "
                  "UNIFORK_RT_ATTENTION=0 to use ONNX Runtime's kernel", fixed[i].name, (long long)v);
  }
  const float softcap = float_attr(info, "softcap", 0.f), scale = float_attr(info, "scale", 0.f);
  if (softcap != 0.f)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: GroupQueryAttention with softcap=%g is not supported: set "
                "UNIFORK_RT_ATTENTION=0 to use ONNX Runtime's kernel", (double)softcap);
  const int64_t hq = int_attr(info, "num_heads", 0), hkv = int_attr(info, "kv_num_heads", 0);
  if (hq <= 0 || hkv <= 0 || hq % hkv)
    return fail(ERR_INVALID_ARGUMENT, "unifork-rt: GroupQueryAttention num_heads=%lld is not a multiple of "
                "kv_num_heads=%lld", (long long)hq, (long long)hkv);
  AKernel* kr = (AKernel*)calloc(1, sizeof(AKernel));
  if (!kr) return fail(ERR_FAIL, "unifork-rt: out of memory");
  kr->hq = hq;
  kr->hkv = hkv;
  kr->rotary = int_attr(info, "do_rotary", 0);
  kr->scale = scale;
  kr->isa = uk_isa();
  kr->tasks = task_count();
  *out = kr;
  return NULL;
}

typedef struct {
  const uk_attn* a;
  int64_t chunk, chunks; /* new tokens per task, tasks per (row, KV head) */
  int64_t pairs;         /* (row, KV head) pairs per task when chunks is 1 */
  float* scratch;
  size_t scratch_floats;
  int isa;
} ATask;

static void run_atask(void* p, size_t i) {
  const ATask* t = (const ATask*)p;
  float* scratch = t->scratch + i * t->scratch_floats;
  if (t->chunks == 1) { /* all of a pair's tokens in one task: `pairs` (row, KV head) pairs, one after another */
    const int64_t n = t->a->b * t->a->hkv, p0 = (int64_t)i * t->pairs, p1 = p0 + t->pairs < n ? p0 + t->pairs : n;
    /* only these pairs read these keys and values. Each pair's data is requested one pair ahead: in the pipeline
     * the depth head's caches have left L2 by its next step (session 43: its attention at 8 rows took 0.38 ms a step
     * there, against about 0.17 in a loop of the op; 0.32 ms with the prefetches) */
    for (int64_t bh = p0; bh < p1; bh++) {
      if (bh + 1 < p1) uk_attn_prefetch_pair(t->a, bh + 1, 1);
      uk_attn_write_kv_pairs(t->a, bh, bh + 1);
    }
    for (int64_t bh = p0; bh < p1; bh++) {
      if (bh + 1 < p1) uk_attn_prefetch_pair(t->a, bh + 1, 0);
      uk_attn_rows(t->a, bh / t->a->hkv, bh % t->a->hkv, 0, t->a->t, scratch, t->isa);
    }
    return;
  }
  const int64_t c = (int64_t)i % t->chunks, bh = (int64_t)i / t->chunks;
  const int64_t t0 = c * t->chunk, t1 = t0 + t->chunk < t->a->t ? t0 + t->chunk : t->a->t;
  uk_attn_rows(t->a, bh / t->a->hkv, bh % t->a->hkv, t0, t1, scratch, t->isa);
}

static OrtStatus* input_data(OrtKernelContext* ctx, size_t i, void** data, int64_t* dims, size_t* rank,
                             const char* what) {
  const OrtValue* v = NULL;
  *data = NULL;
  CHECK(API(S_KernelContext_GetInput, KernelContext_GetInput_t)(ctx, i, &v));
  if (!v) return NULL;
  if (dims) CHECK(value_dims_from(v, dims, rank, what, 0));
  return API(S_GetTensorMutableData, GetTensorMutableData_t)((OrtValue*)v, data);
}

static int same_dims(const int64_t* a, size_t ar, const int64_t* b, size_t br) {
  if (ar != br) return 0;
  for (size_t i = 0; i < ar; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

#define GQA_FAIL(...) fail(ERR_INVALID_ARGUMENT, "unifork-rt: GroupQueryAttention " __VA_ARGS__)

static OrtStatus* akernel_compute(void* k, OrtKernelContext* ctx) {
  const AKernel* kr = (const AKernel*)k;
  size_t count = 0, outs = 0;
  CHECK(API(S_KernelContext_GetInputCount, KernelContext_GetInputCount_t)(ctx, &count));
  CHECK(API(S_KernelContext_GetOutputCount, KernelContext_GetOutputCount_t)(ctx, &outs));
  for (size_t i = 11; i < count && i < 16; i++) {
    void* extra = NULL;
    CHECK(input_data(ctx, i, &extra, NULL, NULL, "GroupQueryAttention input"));
    if (extra)
      return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: GroupQueryAttention input %zu (head_sink, KV scales or Q/K norms) "
                  "is not supported: set UNIFORK_RT_ATTENTION=0 to use ONNX Runtime's kernel", i);
  }
  if (outs < 3)
    return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: GroupQueryAttention without present_key/present_value outputs is not "
                "supported: set UNIFORK_RT_ATTENTION=0 to use ONNX Runtime's kernel");
  int64_t qd[8], kd[8], pd[8], sd[8], td[8], cd[8], id[8], bd[8], ld[8];
  size_t qr = 0, kr_ = 0, pr = 0, sr = 0, tr = 0, cr = 0, ir = 0, br = 0, lr = 0;
  void *q = NULL, *kk = NULL, *vv = NULL, *pk = NULL, *pv = NULL, *seq = NULL, *tot = NULL, *cs = NULL, *sn = NULL,
       *pos = NULL, *bias = NULL, *qlens = NULL;
  CHECK(input_data(ctx, 0, &q, qd, &qr, "GroupQueryAttention query"));
  CHECK(input_data(ctx, 1, &kk, kd, &kr_, "GroupQueryAttention key"));
  int64_t vd[8], pvd[8], snd[8];
  size_t vr = 0, pvr = 0, snr = 0;
  CHECK(input_data(ctx, 2, &vv, vd, &vr, "GroupQueryAttention value"));
  CHECK(input_data(ctx, 3, &pk, pd, &pr, "GroupQueryAttention past_key"));
  CHECK(input_data(ctx, 4, &pv, pvd, &pvr, "GroupQueryAttention past_value"));
  CHECK(input_data(ctx, 5, &seq, sd, &sr, "GroupQueryAttention seqlens_k"));
  CHECK(input_data(ctx, 6, &tot, td, &tr, "GroupQueryAttention total_sequence_length"));
  CHECK(input_data(ctx, 7, &cs, cd, &cr, "GroupQueryAttention cos_cache"));
  CHECK(input_data(ctx, 8, &sn, snd, &snr, "GroupQueryAttention sin_cache"));
  if (count > 9) CHECK(input_data(ctx, 9, &pos, id, &ir, "GroupQueryAttention position_ids"));
  if (count > 10) CHECK(input_data(ctx, 10, &bias, bd, &br, "GroupQueryAttention attention_bias"));
  if (count > 16) CHECK(input_data(ctx, 16, &qlens, ld, &lr, "GroupQueryAttention query_seqlens"));
  if (qr != 3) return GQA_FAIL("query has rank %zu (3: batch, sequence, hidden)", qr);
  const int64_t B = qd[0], T = qd[1], hq = kr->hq, hkv = kr->hkv;
  int64_t dh;
  uk_attn a = {0};
  if (kk) {
    if (!vv || kr_ != 3 || kd[0] != B || kd[1] != T || qd[2] % hq || !same_dims(kd, kr_, vd, vr))
      return GQA_FAIL("key/value do not match the query or each other");
    dh = qd[2] / hq;
    if (kd[2] != hkv * dh) return GQA_FAIL("key has %lld columns, not kv_num_heads x head size", (long long)kd[2]);
    a.k = (const float*)kk;
    a.v = (const float*)vv;
    a.q_stride = hq * dh;
    a.kv_stride = hkv * dh;
  } else {
    if (qd[2] % (hq + 2 * hkv)) return GQA_FAIL("packed query width %lld is not (num_heads + 2 kv_num_heads) x head size",
                                                (long long)qd[2]);
    dh = qd[2] / (hq + 2 * hkv);
    a.k = (const float*)q + hq * dh;
    a.v = (const float*)q + (hq + hkv) * dh;
    a.q_stride = a.kv_stride = qd[2];
  }
  if (!tot || !seq || sr != 1 || sd[0] != B) return GQA_FAIL("seqlens_k must have one entry per row");
  if (elements(td, tr) != 1) return GQA_FAIL("total_sequence_length must be one value");
  if (qlens && (lr != 1 || ld[0] != B)) return GQA_FAIL("query_seqlens must have one entry per row");
  const int64_t total = *(const int32_t*)tot;
  if (pk && (!pv || pr != 4 || pd[0] != B || pd[1] != hkv || pd[3] != dh || !same_dims(pd, pr, pvd, pvr)))
    return GQA_FAIL("past_key/past_value are not both (batch, kv_num_heads, sequence, head size)");
  if (!pk && pv) return GQA_FAIL("past_value without past_key");
  /* present: the past's length, or total_sequence_length where that is longer (a present of its own) */
  const int64_t past_cap = pk ? pd[2] : 0, cap = past_cap > total ? past_cap : total;
  a.b = B; a.t = T; a.hq = hq; a.hkv = hkv; a.dh = dh; a.cap = cap; a.q = (const float*)q;
  a.seqlens_k = (const int32_t*)seq;
  for (int64_t b = 0; b < B; b++) {
    const int64_t seen = (int64_t)a.seqlens_k[b] + 1;
    if (uk_attn_past(&a, b) < 0 || seen > cap || seen > total)
      return GQA_FAIL("row %lld: seqlens_k %lld with %lld new tokens does not fit the cache (%lld) or "
                      "total_sequence_length (%lld)", (long long)b, (long long)(seen - 1), (long long)T, (long long)cap,
                      (long long)total);
    if (qlens && ((const int32_t*)qlens)[b] != T)
      return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: GroupQueryAttention with query_seqlens other than the sequence "
                  "length is not supported: set UNIFORK_RT_ATTENTION=0 to use ONNX Runtime's kernel");
  }
  a.scale = kr->scale != 0.f ? kr->scale : 1.f / sqrtf((float)dh);
  if (kr->rotary) {
    if (!cs || !sn || cr != 2 || cd[1] * 2 != dh || !same_dims(cd, cr, snd, snr))
      return GQA_FAIL("do_rotary needs cos/sin caches of one shape, head size / 2 columns");
    if (pos && (ir != 2 || id[0] != B || id[1] != T)) return GQA_FAIL("position_ids are not (batch, sequence)");
    a.cos_cache = (const float*)cs;
    a.sin_cache = (const float*)sn;
    a.position_ids = (const int64_t*)pos;
    for (int64_t b = 0; b < B; b++)
      for (int64_t t = 0; t < T; t++) {
        const int64_t p = uk_attn_position(&a, b, t);
        if (p < 0 || p >= cd[0])
          return GQA_FAIL("position %lld is outside the rotary caches (%lld)", (long long)p, (long long)cd[0]);
      }
  }
  if (bias) {
    if (br != 4 || (bd[0] != 1 && bd[0] != B) || (bd[1] != 1 && bd[1] != hq) || bd[2] != T || bd[3] != total)
      return GQA_FAIL("attention_bias is not (batch or 1, num_heads or 1, sequence, total_sequence_length)");
    a.bias = (const float*)bias;
    a.bias_b = bd[0];
    a.bias_h = bd[1];
    a.total = total;
  }
  int64_t od[4] = {B, T, hq * dh, 0}, cdims[4] = {B, hkv, cap, dh};
  OrtValue *y = NULL, *pko = NULL, *pvo = NULL;
  void *yp = NULL, *kcp = NULL, *vcp = NULL;
  CHECK(API(S_KernelContext_GetOutput, KernelContext_GetOutput_t)(ctx, 0, od, 3, &y));
  CHECK(API(S_KernelContext_GetOutput, KernelContext_GetOutput_t)(ctx, 1, cdims, 4, &pko));
  CHECK(API(S_KernelContext_GetOutput, KernelContext_GetOutput_t)(ctx, 2, cdims, 4, &pvo));
  if (!pko || !pvo) return fail(ERR_NOT_IMPLEMENTED, "unifork-rt: GroupQueryAttention needs its present outputs");
  CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)(y, &yp));
  CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)(pko, &kcp));
  CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)(pvo, &vcp));
  if (B == 0) return NULL;
  a.kc = (float*)kcp;
  a.vc = (float*)vcp;
  a.out = (float*)yp;
  /* a present apart from the past (no shared buffer): zeros, as ONNX Runtime's kernel leaves it, then the
   * past's keys and values (rows of past_cap slots into rows of cap) */
  const size_t cache_bytes = (size_t)(B * hkv * cap * dh) * sizeof(float);
  if (a.kc != pk) memset(a.kc, 0, cache_bytes);
  if (a.vc != pv) memset(a.vc, 0, cache_bytes);
  for (int64_t b = 0; pk && b < B; b++)
    for (int64_t h = 0; h < hkv; h++) {
      const size_t src = (size_t)(b * hkv + h) * past_cap * dh, dst = (size_t)(b * hkv + h) * cap * dh;
      const size_t bytes = (size_t)uk_attn_past(&a, b) * dh * sizeof(float);
      if (a.kc != pk) memcpy(a.kc + dst, (const float*)pk + src, bytes);
      if (a.vc != pv) memcpy(a.vc + dst, (const float*)pv + src, bytes);
    }
  if (T == 0) return NULL;
  ATask t = {&a, T, 1, 1, NULL, uk_attn_scratch_floats(&a), kr->isa};
  size_t tasks = (size_t)(B * hkv);
  if (T > 1) { /* prompts: chunks of 16 tokens, claimed one at a time by the pool's threads */
    t.chunk = 16;
    t.chunks = (T + 15) / 16;
    tasks *= (size_t)t.chunks;
  } else { /* a step: pairs per task so that each task has about 64k multiply-adds of work (the depth head's
            * 8 rows x 32 heads of 4 keys were 256 tasks of a fraction of a microsecond each: 68-70 us a layer,
            * 45-54 as 2 tasks); the paper decoders' 7 heads x hundreds of keys stay one pair a task. But at least
            * one task a thread where there are pairs enough: by work alone the depth head's first steps (1-2 keys)
            * were one task, on one thread (session 43) */
    int64_t keys = 1;
    for (int64_t b = 0; b < B; b++) keys = uk_attn_past(&a, b) + 1 > keys ? uk_attn_past(&a, b) + 1 : keys;
    const int64_t work = (hq / hkv) * keys * dh, n = B * hkv, want = n < kr->tasks ? n : kr->tasks;
    const int64_t per = work >= 65536 ? 1 : (65536 + work - 1) / work; /* pairs a task by work alone */
    int64_t count = (n + per - 1) / per;
    count = count < want ? want : count;
    t.pairs = (n + count - 1) / count; /* as even as the task count allows: 196 + 60 pairs -> 128 + 128 */
    tasks = (size_t)((n + t.pairs - 1) / t.pairs);
  }
  /* Where a (row, KV head) pair's tokens are all in one task (a step, or a prompt of up to 16 tokens), that task
   * writes the pair's new keys and values into the cache first (run_atask), in the pool's threads: at the depth
   * head's 8 rows x 32 heads the caller alone had spent about half of the op's time writing them (42 of 84 us a
   * layer, session 41). Otherwise (chunks of a longer prompt, which read the keys of the chunks before them) they
   * are all written here first. */
  if (t.chunks > 1) uk_attn_write_kv(&a);
  t.scratch = (float*)malloc(tasks * t.scratch_floats * sizeof(float));
  if (!t.scratch) return fail(ERR_FAIL, "unifork-rt: out of memory for attention scores");
  OrtStatus* st = API(S_KernelContext_ParallelFor, KernelContext_ParallelFor_t)(ctx, run_atask, tasks, 0, &t);
  free(t.scratch);
  return st;
}

/* ---- SkipLayerNormalization (com.microsoft) on norm_kernels.c ----
 * Float inputs: input (rank 2 or 3), skip (the input's last two dimensions; its batch, if any, repeated over the
 * input's as ONNX Runtime reads it), gamma, then beta and bias. Outputs: output, and the sum input + skip (+ bias) where the node names output 3.
 * Outputs 1 and 2 (mean and inverse deviation, for training) are not written: ONNX Runtime's CPU kernel does not
 * write them either. SkipSimplifiedLayerNormalization (the decoders') stays ONNX Runtime's: its kernel is fast
 * (docs/KERNELS.md). UNIFORK_RT_NORM=0 keeps ONNX Runtime's SkipLayerNormalization too. */

typedef struct {
  float eps;
  int isa;
  int64_t tasks;
} NKernel;

static const char* nop_name(const void* op) { (void)op; return "SkipLayerNormalization"; }
static size_t nop_input_count(const void* op) { (void)op; return 5; }
static int nop_input_char(const void* op, size_t i) { (void)op; return i < 3 ? IO_REQUIRED : IO_OPTIONAL; }
static size_t nop_output_count(const void* op) { (void)op; return 4; }
static int nop_output_char(const void* op, size_t i) { (void)op; return i == 0 ? IO_REQUIRED : IO_OPTIONAL; }
static void nkernel_destroy(void* k) { free(k); }

static OrtStatus* nkernel_create(const void* op, const void* api, const OrtKernelInfo* info, void** out) {
  (void)op; (void)api;
  NKernel* kr = (NKernel*)calloc(1, sizeof(NKernel));
  if (!kr) return fail(ERR_FAIL, "unifork-rt: out of memory");
  kr->eps = float_attr(info, "epsilon", 1e-12f); /* the schema's default */
  if (!(kr->eps >= 0.f)) {
    const double eps = kr->eps;
    free(kr);
    return fail(ERR_INVALID_ARGUMENT, "unifork-rt: SkipLayerNormalization epsilon=%g must be 0 or more", eps);
  }
  kr->isa = uk_isa();
  kr->tasks = task_count();
  *out = kr;
  return NULL;
}

typedef struct {
  uk_norm n;
  int64_t rows;
  size_t tasks;
  int isa;
} NTask;

static void run_ntask(void* p, size_t i) {
  const NTask* t = (const NTask*)p;
  int64_t r0, r1;
  task_range(t->rows, i, t->tasks, &r0, &r1);
  uk_skip_norm_rows(&t->n, r0, r1, t->isa);
}

/* a 1-D input of h floats (gamma, beta, bias), or NULL where the node leaves it out */
static OrtStatus* norm_vector(OrtKernelContext* ctx, size_t count, size_t i, int64_t h, const char* what,
                              const float** data) {
  int64_t d[8];
  size_t r = 0;
  *data = NULL;
  if (i >= count) return NULL;
  CHECK(input_data(ctx, i, (void**)data, d, &r, what));
  if (*data && (r != 1 || d[0] != h))
    return fail(ERR_INVALID_ARGUMENT, "unifork-rt: layer norm %s must have one dimension of %lld (the input's last)",
                what, (long long)h);
  return NULL;
}

static OrtStatus* nkernel_compute(void* k, OrtKernelContext* ctx) {
  const NKernel* kr = (const NKernel*)k;
  size_t count = 0, outs = 0, xr = 0, sr = 0;
  int64_t xd[8], sd[8];
  void *x = NULL, *skip = NULL;
  CHECK(API(S_KernelContext_GetInputCount, KernelContext_GetInputCount_t)(ctx, &count));
  CHECK(API(S_KernelContext_GetOutputCount, KernelContext_GetOutputCount_t)(ctx, &outs));
  CHECK(input_data(ctx, 0, &x, xd, &xr, "layer norm input"));
  CHECK(input_data(ctx, 1, &skip, sd, &sr, "layer norm skip"));
  if (xr < 2 || xr > 3 || sr < 2 || sr > 3)
    return fail(ERR_INVALID_ARGUMENT, "unifork-rt: layer norm input and skip must have 2 or 3 dimensions (%zu, %zu)",
                xr, sr);
  const int64_t h = xd[xr - 1], total = elements(xd, xr), skip_size = elements(sd, sr);
  /* as ONNX Runtime checks it: the last two dimensions the input's; its rows then repeat over the input's
   * (offset % skip_size stays inside it) */
  if (sd[sr - 1] != h || sd[sr - 2] != xd[xr - 2])
    return fail(ERR_INVALID_ARGUMENT, "unifork-rt: layer norm skip's last two dimensions (%lld, %lld) must be the "
                "input's (%lld, %lld)", (long long)sd[sr - 2], (long long)sd[sr - 1], (long long)xd[xr - 2],
                (long long)h);
  OrtValue *y = NULL, *sum = NULL;
  void *yp = NULL, *sp = NULL;
  CHECK(API(S_KernelContext_GetOutput, KernelContext_GetOutput_t)(ctx, 0, xd, xr, &y));
  if (outs > 3) CHECK(API(S_KernelContext_GetOutput, KernelContext_GetOutput_t)(ctx, 3, xd, xr, &sum));
  if (total == 0) return NULL; /* (then skip_size is 0 too, or its rows are not read) */
  NTask t = {{0}, 0, 1, kr->isa};
  t.n.x = (const float*)x;
  t.n.skip = (const float*)skip;
  t.n.h = h;
  t.n.skip_size = skip_size;
  t.n.eps = kr->eps;
  CHECK(norm_vector(ctx, count, 2, h, "gamma", &t.n.gamma));
  if (!t.n.gamma) return fail(ERR_INVALID_ARGUMENT, "unifork-rt: layer norm gamma (input 2) is missing");
  CHECK(norm_vector(ctx, count, 3, h, "beta", &t.n.beta));
  CHECK(norm_vector(ctx, count, 4, h, "bias", &t.n.bias));
  CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)(y, &yp));
  if (sum) CHECK(API(S_GetTensorMutableData, GetTensorMutableData_t)(sum, &sp));
  t.n.y = (float*)yp;
  t.n.sum = (float*)sp;
  t.rows = total / h;
  /* a row of 896 takes well under a microsecond: rows go to the pool's threads only where each of two tasks or
   * more gets 8192 floats or more (16384 in all: a prompt), since handing work to a thread costs more than that */
  int64_t tasks = total / 8192;
  tasks = tasks < kr->tasks ? tasks : kr->tasks;
  tasks = tasks < t.rows ? tasks : t.rows;
  if (tasks <= 1) {
    uk_skip_norm_rows(&t.n, 0, t.rows, t.isa);
    return NULL;
  }
  t.tasks = (size_t)tasks;
  return API(S_KernelContext_ParallelFor, KernelContext_ParallelFor_t)(ctx, run_ntask, t.tasks, 0, &t);
}

/* The ops, filled at compile time: RegisterCustomOps runs again for every session that registers this
 * library, possibly while other sessions compute with these tables, so they are never written at run time. */
#define UK_OP_COMMON                                                                                        \
  .version = UK_API_VERSION, .GetExecutionProviderType = op_ep, .GetOutputType = op_output_type,           \
  .GetOutputTypeCount = op_output_count, .GetOutputCharacteristic = op_output_char,                         \
  .GetInputMemoryType = op_mem_type, .GetVariadicInputMinArity = op_one, .GetVariadicInputHomogeneity = op_one, \
  .GetVariadicOutputMinArity = op_one, .GetVariadicOutputHomogeneity = op_zero
static const CustomOp g_op = {UK_OP_COMMON, .GetName = op_name, .GetInputType = op_input_type,
                              .GetInputTypeCount = op_input_count, .GetInputCharacteristic = op_input_char,
                              .KernelDestroy = kernel_destroy, .CreateKernelV2 = kernel_create,
                              .KernelComputeV2 = kernel_compute};
static const CustomOp g_fop = {UK_OP_COMMON, .GetName = fop_name, .GetInputType = fop_type,
                               .GetInputTypeCount = fop_input_count, .GetInputCharacteristic = fop_input_char,
                               .KernelDestroy = fkernel_destroy, .CreateKernelV2 = fkernel_create,
                               .KernelComputeV2 = fkernel_compute};
static const CustomOp g_dop = {UK_OP_COMMON, .GetName = dop_name, .GetInputType = dop_input_type,
                               .GetInputTypeCount = dop_input_count, .GetInputCharacteristic = dop_input_char,
                               .KernelDestroy = ikernel_destroy, .CreateKernelV2 = dkernel_create,
                               .KernelComputeV2 = ikernel_compute};
static const CustomOp g_mop = {UK_OP_COMMON, .GetName = mop_name, .GetInputType = mop_input_type,
                               .GetInputTypeCount = mop_input_count, .GetInputCharacteristic = mop_input_char,
                               .KernelDestroy = ikernel_destroy, .CreateKernelV2 = mkernel_create,
                               .KernelComputeV2 = ikernel_compute};
static const CustomOp g_nop = {UK_OP_COMMON, .GetName = nop_name, .GetInputType = fop_type,
                               .GetInputTypeCount = nop_input_count, .GetInputCharacteristic = nop_input_char,
                               .GetOutputTypeCount = nop_output_count, .GetOutputCharacteristic = nop_output_char,
                               .KernelDestroy = nkernel_destroy, .CreateKernelV2 = nkernel_create,
                               .KernelComputeV2 = nkernel_compute};
static const CustomOp g_aop = {UK_OP_COMMON, .GetName = aop_name, .GetInputType = aop_input_type,
                               .GetInputTypeCount = aop_input_count, .GetInputCharacteristic = aop_input_char,
                               .GetOutputTypeCount = aop_output_count, .GetOutputCharacteristic = aop_output_char,
                               .KernelDestroy = akernel_destroy, .CreateKernelV2 = akernel_create,
                               .KernelComputeV2 = akernel_compute};

/* Whether this library registers its TransposeMatMul (the float kernel): on every CPU the tiles run on (AVX2 and
 * FMA, or AVX-512 VNNI), unless UNIFORK_RT_FLOAT_KERNEL=0 keeps ONNX Runtime's SGEMM for it. Until session 45 AVX2
 * CPUs kept ONNX Runtime's: under the AVX2 CPUID mask on an AMD host (session 29) its AVX2 tiles lost at 8 rows and at
 * a 297-row prompt. On the Intel guest of session 45, under the same mask, they read a paper decode's weights at 1-2
 * rows 1.3-1.4x as fast as ONNX Runtime's SGEMM and were faster at 8 rows too, slower only at a 297-row prompt (about
 * 12%, 7% since the AVX2 tiles take k in blocks): a caption's decode step is what this kernel is for (docs/KERNELS.md,
 * "Float weights"). */
int uk_float_kernel(void) {
  const char* off = getenv("UNIFORK_RT_FLOAT_KERNEL");
  if (off && !strcmp(off, "0")) return 0;
  return uk_isa() != UK_ISA_NONE;
}

/* Whether it registers DynamicQuantizeMatMul and MatMulIntegerToFloat: on AVX-512 VNNI and (since session 50)
 * AVX2 CPUs, unless UNIFORK_RT_INTEGER_KERNEL=0 keeps ONNX Runtime's kernels for them (on AVX2 its GEMM is the faster
 * at a prompt's rows: docs/KERNELS.md "Integer ops"). */
int uk_integer_kernel(void) {
  const char* off = getenv("UNIFORK_RT_INTEGER_KERNEL");
  if (off && !strcmp(off, "0")) return 0;
  return uk_isa() != UK_ISA_NONE;
}

OrtStatus* RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
  g_api = (void* const*)base->GetApi(UK_API_VERSION);
  if (!g_api) return NULL; /* an onnxruntime older than 1.18: nothing registered, its own kernel runs */
  if (uk_isa() == UK_ISA_NONE) return NULL; /* no AVX2 (or UNIFORK_RT_ISA=none): ONNX Runtime's kernel runs */
  const char* domain = getenv("UNIFORK_RT_QMATMUL_DOMAIN");
  OrtCustomOpDomain* d = NULL;
  CHECK(API(S_CreateCustomOpDomain, CreateCustomOpDomain_t)(domain ? domain : "com.microsoft", &d));
  CHECK(API(S_CustomOpDomain_Add, CustomOpDomain_Add_t)(d, &g_op));
  if (uk_integer_kernel()) {
    CHECK(API(S_CustomOpDomain_Add, CustomOpDomain_Add_t)(d, &g_dop));
    CHECK(API(S_CustomOpDomain_Add, CustomOpDomain_Add_t)(d, &g_mop));
  }
  if (uk_float_kernel()) CHECK(API(S_CustomOpDomain_Add, CustomOpDomain_Add_t)(d, &g_fop));
  if (!getenv("UNIFORK_RT_ATTENTION") || strcmp(getenv("UNIFORK_RT_ATTENTION"), "0"))
    CHECK(API(S_CustomOpDomain_Add, CustomOpDomain_Add_t)(d, &g_aop));
  if (!getenv("UNIFORK_RT_NORM") || strcmp(getenv("UNIFORK_RT_NORM"), "0"))
    CHECK(API(S_CustomOpDomain_Add, CustomOpDomain_Add_t)(d, &g_nop));
  return API(S_AddCustomOpDomain, AddCustomOpDomain_t)(options, d);
}
