/* unifork-rt: the token sampler of runtime/sampling.py (temperature 1, top-k, top-p), row by row in C.
 *
 * sampling.py's `sample` is the specification, and this file reproduces its float64 arithmetic
 * operation for operation, so that both pick the same token for the same logits and uniform draw:
 *   - the kept set: every logit at least as large as the k-th largest (ties included), ids ascending;
 *   - d = x - max(x) in float64 (uk_sample_select); exp(d) and every sum of p are NumPy's own, taken by
 *     sampling.py between the C passes (np.exp differs from libm's exp in the last bit for about a quarter
 *     of inputs, and ndarray.sum is pairwise within blocks of np.getbufsize() entries, summed in order);
 *   - p / sum, then top-p (uk_sample_top_p): the kept entries in descending order of p, ties by id (a
 *     stable radix sort on p's bits), the exclusive running mass computed as NumPy does, cumsum(p) - p, and the entries
 *     whose mass is below top_p, back in id order;
 *   - the token (uk_sample_pick): p / the survivors' sum, then the first running sum (np.cumsum: one
 *     after another) greater than u (searchsorted, side "right"), or the last survivor where rounding
 *     leaves every sum at or below u.
 * tests/test_sampling.py checks the tokens against sampling.py's numpy path on rows with ties, plateaus,
 * few candidates, kept sets beyond one NumPy buffer, every k, and u on and beside exact running sums.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int cmp_float(const void* x, const void* y) {
  const float a = *(const float*)x, b = *(const float*)y;
  return (a > b) - (a < b);
}

/* the k-th largest of the n floats at v (0 < k <= n), without branches on the data: each round moves the
 * entries below and above a median-of-3 pivot to the two ends of the other buffer (both stores made, one
 * kept) and goes on with the side that holds it. v and tmp: n floats each, both overwritten. A quickselect
 * that branched on each comparison took twice as long on fresh logits (a mispredicted branch per entry). */
static float kth_largest(float* v, float* tmp, int64_t n, int64_t k) {
  int64_t want = n - k; /* the want-th smallest, 0-based */
  float* cur = v;       /* the entries left, in buffer `from` */
  float *from = v, *to = tmp;
  int poor = 0;         /* rounds that kept more than 3/4 of the entries (an organ pipe, a crafted row) */
  while (n > 16) {
    if (poor > 4) { /* quickselect is heading for n^2: sort what is left (n log n) */
      qsort(cur, (size_t)n, sizeof(float), cmp_float);
      return cur[want];
    }
    const int64_t before = n;
    float a = cur[0], b = cur[n / 2], c = cur[n - 1];
    float pivot = a < b ? (b < c ? b : (a < c ? c : a)) : (a < c ? a : (b < c ? c : b));
    int64_t lo = 0, hi = 0;
    for (int64_t i = 0; i < n; i++) {
      const float e = cur[i];
      to[lo] = e;
      to[n - 1 - hi] = e;
      lo += e < pivot;
      hi += e > pivot;
    }
    if (want < lo) {
      cur = to;
      n = lo;
    } else if (want < n - hi) {
      return pivot;
    } else {
      want -= n - hi;
      cur = to + (n - hi);
      n = hi;
    }
    poor += 4 * n > 3 * before;
    float* t = from; /* the buffer just read is free for the next round */
    from = to;
    to = t;
  }
  for (int64_t i = 1; i < n; i++) { /* insertion sort of the last few */
    float e = cur[i];
    int64_t j = i;
    for (; j > 0 && cur[j - 1] > e; j--) cur[j] = cur[j - 1];
    cur[j] = e;
  }
  return cur[want];
}

/* Row by row, the kept set of sampling.py (temperature 1): ids (ascending) and d = x - max(x) as float64,
 * from the k-th largest logit (top_k 0 or >= V: every logit). The rows' sets follow one another in ids
 * and d (rows * V entries at most); counts[b] is row b's size. scratch: 4 V floats. Logits are finite
 * (sampling.check_finite).
 * The k-th largest is found as top_entries finds it: a cut from a 1-in-8 sample, low enough that about
 * 1.5 k entries clear it; when at least k do, the row's k-th largest is the k-th largest of those
 * candidates (collected without branches, in id order), else of the whole row. */
void uk_sample_select(const float* logits, int64_t rows, int64_t V, int64_t top_k, int32_t* ids, double* d,
                      int64_t* counts, float* scratch) {
  float* cval = scratch;          /* candidates' values, ids ascending */
  int32_t* cid = (int32_t*)(scratch + V);
  float* work = scratch + 2 * V;  /* a copy for the selection, and its second buffer */
  float* work2 = scratch + 3 * V;
  int64_t at = 0;
  for (int64_t b = 0; b < rows; b++) {
    const float* row = logits + b * V;
    int32_t* id = ids + at;
    double* x = d + at;
    int64_t nc = V;
    float kth = -__builtin_inff();
    if (top_k > 0 && top_k < V) {
      int64_t ns = 0, m = (top_k / 8) * 3 / 2 + 8;
      for (int64_t i = 0; i < V; i += 8) work[ns++] = row[i];
      nc = 0;
      if (m < ns) {
        const float cut = kth_largest(work, work2, ns, m);
        for (int64_t i = 0; i < V; i++) {
          cval[nc] = row[i];
          cid[nc] = (int32_t)i;
          nc += row[i] >= cut;
        }
      }
      if (nc >= top_k) {
        memcpy(work, cval, (size_t)nc * sizeof(float));
        kth = kth_largest(work, work2, nc, top_k);
      } else { /* too few cleared the cut: the whole row */
        memcpy(work, row, (size_t)V * sizeof(float));
        kth = kth_largest(work, work2, V, top_k);
        nc = V;
      }
    }
    if (nc == V) /* every entry a candidate */
      for (int64_t i = 0; i < V; i++) {
        cval[i] = row[i];
        cid[i] = (int32_t)i;
      }
    int64_t n = 0;
    float top = kth;
    for (int64_t i = 0; i < nc; i++) {
      id[n] = cid[i];
      x[n] = (double)cval[i];
      top = cval[i] > top ? cval[i] : top;
      n += cval[i] >= kth;
    }
    for (int64_t i = 0; i < n; i++) x[i] -= (double)top;
    counts[b] = n;
    at += n;
  }
}

/* idx[0..n) (ascending on entry) sorted as np.argsort(-p, kind="stable") orders them: p descending,
 * equal p by index. An LSD radix sort, stable, on the complemented bits of p (p >= 0 and finite: its bits
 * order as its value), 8 bits a pass, passes where all keys share the digit skipped. tmp: n more indices;
 * key: 2 n keys. */
static void sort_desc(const double* p, int32_t* idx, int32_t* tmp, uint64_t* key, int64_t n) {
  uint64_t* ktmp = key + n;
  for (int64_t i = 0; i < n; i++) {
    uint64_t u;
    memcpy(&u, &p[idx[i]], 8);
    key[i] = ~u;
  }
  for (int shift = 0; shift < 64; shift += 8) {
    int64_t count[257] = {0};
    for (int64_t i = 0; i < n; i++) count[((key[i] >> shift) & 255) + 1]++;
    int skip = 0;
    for (int dgt = 1; dgt <= 256; dgt++) skip |= count[dgt] == n;
    if (skip) continue;
    for (int dgt = 0; dgt < 256; dgt++) count[dgt + 1] += count[dgt];
    for (int64_t i = 0; i < n; i++) {
      int64_t at = count[(key[i] >> shift) & 255]++;
      ktmp[at] = key[i];
      tmp[at] = idx[i];
    }
    memcpy(key, ktmp, (size_t)n * sizeof(uint64_t));
    memcpy(idx, tmp, (size_t)n * sizeof(int32_t));
  }
}

/* Row by row, after uk_sample_select and e = np.exp(d) (the rows' sets one after another, as there), with
 * sums[b] = e's sum over row b as NumPy takes it: p = e / sum in place; then, for top_p < 1, only the
 * entries that top-p keeps, in id order (ids with them), the rows' survivors again one after another from
 * the start, and counts[b] set to how many. Returns 0, or -1 out of memory. */
int uk_sample_top_p(int32_t* ids, double* e, int64_t* counts, int64_t rows, const double* sums, double top_p) {
  int64_t cap = 1; /* the largest kept set */
  for (int64_t b = 0; b < rows; b++) cap = counts[b] > cap ? counts[b] : cap;
  int32_t* idx = (int32_t*)malloc((size_t)cap * 2 * sizeof(int32_t));
  unsigned char* on = (unsigned char*)malloc((size_t)cap);
  uint64_t* key = (uint64_t*)malloc((size_t)cap * 2 * sizeof(uint64_t));
  int status = idx && on && key ? 0 : -1;
  int64_t at = 0, to = 0; /* row b's set starts at `at`; its survivors go to `to` <= at */
  for (int64_t b = 0; b < rows && !status; b++) {
    double* p = e + at;
    int32_t* id = ids + at;
    const int64_t n = counts[b];
    at += n;
    for (int64_t i = 0; i < n; i++) p[i] /= sums[b];
    if (top_p >= 1. || n < 1) continue;
    for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)i;
    sort_desc(p, idx, idx + cap, key, n);
    double run = 0.;
    memset(on, 0, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
      const double pi = p[idx[i]];
      run += pi;
      if (run - pi < top_p) on[idx[i]] = 1;
    }
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) /* moved down only: to + m <= at - n + i */
      if (on[i]) {
        e[to + m] = p[i];
        ids[to + m++] = id[i];
      }
    counts[b] = m;
    to += m;
  }
  free(idx);
  free(on);
  free(key);
  return status;
}

/* Row by row: the token for the uniform draw u[b] from the sets as uk_sample_top_p left them, p divided by
 * sums[b] first when sums is not NULL (after top-p, NumPy's sum of the survivors). */
void uk_sample_pick(const int32_t* ids, double* p, const int64_t* counts, int64_t rows, const double* sums,
                    const double* u, int64_t* out) {
  int64_t at = 0;
  for (int64_t b = 0; b < rows; at += counts[b], b++) {
    const int64_t n = counts[b];
    double* q = p + at;
    if (sums)
      for (int64_t i = 0; i < n; i++) q[i] /= sums[b];
    double run = 0.;
    int64_t j = n - 1;
    for (int64_t i = 0; i < n; i++) {
      run += q[i];
      if (run > u[b]) {
        j = i;
        break;
      }
    }
    out[b] = j >= 0 ? ids[at + j] : -1;
  }
}
