/*
 * Fused memory-bound kernels of the U-Net on NHWC float32 data, on OpenMP threads (libgomp, the
 * runtime oneDNN already loaded, so both share one thread pool).
 *
 * Not tied to a paper: engine work (issue "The main job on both cores"). oneDNN 2.6 has no group
 * normalization, and its binary post-ops run reference code, so a GroupNorm + SiLU on oneDNN is
 * six passes over the activations (square, two sums, scale, shift, swish) and its gradient six
 * more; here the forward is two passes (statistics, then normalize + activate) and the gradient
 * two (statistics of the SiLU-backed-through gradient, then the input gradient), each pass on
 * every thread; with a batch of at least one image per thread each thread takes whole images,
 * both passes in turn, so that the second reads the image from the core's L2 cache. core/native/kernels.ts builds this file with the system C compiler and binds it
 * through Deno FFI; the formulas are those of core/dnnl/group_norm.ts.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>

/* Pixels summed in float before they join the double accumulators. */
#define BLOCK 64

/* e^x to about 2 float ulps, branch-free so that loops calling it vectorize (Cephes' exp2f
 * polynomial on [-1/2, 1/2] and the exponent bits set directly; glibc's vector expf needs
 * -ffast-math, which would also assume no NaN). Arguments are clamped to
 * [-87, 88], where the result stays a normal float; NaN passes through. */
static inline float exp_approx(float x) {
  float t = x * 1.44269504088896341f;
  t = t < -125.0f ? -125.0f : t > 127.0f ? 127.0f : t;
  float n = __builtin_floorf(t + 0.5f), f = t - n;
  float p = 1.535336188319500e-4f;
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  union {
    int i;
    float f;
  } scale = {.i = ((int)n + 127) << 23};
  return p * scale.f;
}

static inline float sigmoidf(float u) { return 1.0f / (1.0f + exp_approx(-u)); }

/* dy taken back through y = SiLU(u) = u sigmoid(u): dy s (1 + u (1 - s)). */
static inline float silu_grad(float dy, float u) {
  float s = sigmoidf(u);
  return dy * s * (1.0f + u * (1.0f - s));
}

/* Adds to d1[j], d2[j] (channel j) the sums over pixels [p0, p1) of image i: s1 = sum of f,
 * s2 = sum of f x, where f is x itself (mode 0; mode 3: s1 alone), the gradient dy (mode 2), or
 * dy taken back through SiLU(x a + b) (mode 1, ai and bi that image's per-channel a and b).
 * BLOCK pixels are summed in float (acc: 2c floats), then added into the double sums. */
static void sum_range(int mode, const float *x, const float *dy, const float *ai,
                      const float *bi, long i, long p0, long p1, long hw, long c, float *acc,
                      double *d1, double *d2) {
  for (long p = p0; p < p1; p += BLOCK) {
    long pe = p + BLOCK < p1 ? p + BLOCK : p1;
    float *f1 = acc, *f2 = acc + c;
    for (long j = 0; j < c; j++) f1[j] = f2[j] = 0.0f;
    for (long q = p; q < pe; q++) {
      const float *xr = x + (i * hw + q) * c;
      if (mode == 0) {
        for (long j = 0; j < c; j++) {
          f1[j] += xr[j];
          f2[j] += xr[j] * xr[j];
        }
      } else if (mode == 3) {
        for (long j = 0; j < c; j++) f1[j] += xr[j];
      } else if (mode == 2) {
        const float *gr = dy + (i * hw + q) * c;
        for (long j = 0; j < c; j++) {
          f1[j] += gr[j];
          f2[j] += gr[j] * xr[j];
        }
      } else {
        const float *gr = dy + (i * hw + q) * c;
        for (long j = 0; j < c; j++) {
          float g = silu_grad(gr[j], xr[j] * ai[j] + bi[j]);
          f1[j] += g;
          f2[j] += g * xr[j];
        }
      }
    }
    for (long j = 0; j < c; j++) {
      d1[j] += f1[j];
      d2[j] += f2[j];
    }
  }
}

/* The sums of sum_range over all pixels of every image, into s1, s2 ([n, c]). Each image's
 * pixels are split into `chunks` ranges so that a batch smaller than the thread count still
 * fills the threads; partial sums are added in a fixed order. With n >= threads (one range per
 * image) the result equals the per-image sums of the fused paths below, bit for bit. */
static int channel_sums(int mode, const float *x, const float *dy, const float *a, const float *b,
                        long n, long hw, long c, double *s1, double *s2) {
  int threads = omp_get_max_threads();
  long chunks = n >= threads ? 1 : (threads + n - 1) / n;
  if (chunks > hw) chunks = hw;
  long tasks = n * chunks;
  double *part = calloc((size_t)(tasks * 2 * c), sizeof(double));
  float *accs = malloc((size_t)(threads * 2 * c) * sizeof(float));
  if (part == NULL || accs == NULL) {
    free(part);
    free(accs);
    return 0;
  }
#pragma omp parallel
  {
    float *acc = accs + omp_get_thread_num() * 2 * c;
#pragma omp for schedule(static)
    for (long t = 0; t < tasks; t++) {
      long i = t / chunks, k = t % chunks;
      double *d1 = part + t * 2 * c;
      sum_range(mode, x, dy, a ? a + i * c : NULL, b ? b + i * c : NULL, i, hw * k / chunks,
                hw * (k + 1) / chunks, hw, c, acc, d1, d1 + c);
    }
  }
  for (long i = 0; i < n; i++) {
    for (long j = 0; j < c; j++) {
      double t1 = 0, t2 = 0;
      for (long k = 0; k < chunks; k++) {
        t1 += part[(i * chunks + k) * 2 * c + j];
        t2 += part[(i * chunks + k) * 2 * c + c + j];
      }
      s1[i * c + j] = t1;
      s2[i * c + j] = t2;
    }
  }
  free(part);
  free(accs);
  return 1;
}

/* y = act(x a + b) over `rows` pixels of one image (a, b per channel); SiLU when silu != 0. */
static void affine_rows(const float *x, const float *a, const float *b, long rows, long c,
                        int silu, float *y) {
  for (long r = 0; r < rows; r++) {
    const float *xr = x + r * c;
    float *yr = y + r * c;
    if (silu) {
      for (long j = 0; j < c; j++) {
        float u = xr[j] * a[j] + b[j];
        yr[j] = u * sigmoidf(u);
      }
    } else {
      for (long j = 0; j < c; j++) yr[j] = xr[j] * a[j] + b[j];
    }
  }
}

/* Image i's group statistics from its channel sums s1, s2 ([c]): mean and r = 1 / sqrt(var +
 * eps) per group, and the per-channel a = gamma r, b = beta - mean gamma r of the affine. */
static void group_stats(const double *s1, const double *s2, const float *gamma,
                        const float *beta, long hw, long c, long groups, float eps,
                        float *mean, float *rstd, float *a, float *b) {
  long cg = c / groups;
  double count = (double)(hw * cg);
  for (long g = 0; g < groups; g++) {
    double m1 = 0, m2 = 0;
    for (long j = g * cg; j < (g + 1) * cg; j++) {
      m1 += s1[j];
      m2 += s2[j];
    }
    double mu = m1 / count, var = m2 / count - mu * mu;
    double r = 1.0 / sqrt((var > 0 ? var : 0) + eps);
    mean[g] = (float)mu;
    rstd[g] = (float)r;
    for (long j = g * cg; j < (g + 1) * cg; j++) {
      a[j] = (float)(gamma[j] * r);
      b[j] = (float)(beta[j] - mu * gamma[j] * r);
    }
  }
}

/* With a per-channel shift sh added to an image before normalizing, its sums over the hw pixels
 * become s1 + hw sh and s2 + 2 sh s1 + hw sh^2 (in double, from the sums of x alone). */
static void shift_sums(const float *sh, long hw, long c, double *s1, double *s2) {
  for (long j = 0; j < c; j++) {
    double v = sh[j];
    s2[j] += 2 * v * s1[j] + (double)hw * v * v;
    s1[j] += (double)hw * v;
  }
}

/* The shift folded into the affine: (x + sh) a + b = x a + (b + sh a). */
static void shift_affine(const float *sh, const float *a, long c, float *b) {
  for (long j = 0; j < c; j++) b[j] += sh[j] * a[j];
}

/* Group normalization of x [n, hw, c] in `groups` contiguous channel groups, optionally followed
 * by SiLU: y = act(gamma (x - mean) r + beta), r = 1 / sqrt(var + eps), var = E[x^2] - mean^2
 * (biased, in double). Writes y and the per-image, per-group mean and r ([n, groups]).
 * With at least one image per thread, each thread normalizes whole images, statistics then
 * output, so that the second pass reads the image from the core's cache (the result is the
 * same); else all statistics first, each image's pixels split over the threads. With `shift`
 * ([n, c], may be NULL) the input is x + shift per image and channel, never written out (the
 * U-Net's embedding shift before its second GroupNorm, in sampling).
 * Returns 0 when memory runs out (nothing written), else 1. */
int diffuse_group_norm(const float *x, const float *shift, const float *gamma,
                       const float *beta, long n, long hw, long c, long groups, float eps,
                       int silu, float *y, float *mean, float *rstd) {
  int threads = omp_get_max_threads();
  if (n >= threads) {
    /* Per thread: 2c float accumulators, 2c double sums, 2c affine coefficients. */
    float *work = malloc((size_t)(threads * 8 * c) * sizeof(float));
    if (work == NULL) return 0;
#pragma omp parallel
    {
      float *acc = work + omp_get_thread_num() * 8 * c, *ab = acc + 2 * c;
      double *d = (double *)(acc + 4 * c);
#pragma omp for schedule(static)
      for (long i = 0; i < n; i++) {
        for (long j = 0; j < 2 * c; j++) d[j] = 0;
        sum_range(0, x, NULL, NULL, NULL, i, 0, hw, hw, c, acc, d, d + c);
        if (shift) shift_sums(shift + i * c, hw, c, d, d + c);
        group_stats(d, d + c, gamma, beta, hw, c, groups, eps, mean + i * groups,
                    rstd + i * groups, ab, ab + c);
        if (shift) shift_affine(shift + i * c, ab, c, ab + c);
        affine_rows(x + i * hw * c, ab, ab + c, hw, c, silu, y + i * hw * c);
      }
    }
    free(work);
    return 1;
  }
  double *s = malloc((size_t)(2 * n * c) * sizeof(double));
  float *ab = malloc((size_t)(2 * n * c) * sizeof(float));
  if (s == NULL || ab == NULL || !channel_sums(0, x, NULL, NULL, NULL, n, hw, c, s, s + n * c)) {
    free(s);
    free(ab);
    return 0;
  }
  for (long i = 0; i < n; i++) {
    if (shift) shift_sums(shift + i * c, hw, c, s + i * c, s + n * c + i * c);
    group_stats(s + i * c, s + n * c + i * c, gamma, beta, hw, c, groups, eps,
                mean + i * groups, rstd + i * groups, ab + i * c, ab + n * c + i * c);
    if (shift) shift_affine(shift + i * c, ab + i * c, c, ab + n * c + i * c);
  }
  long rows_per = (hw + threads - 1) / threads;
#pragma omp parallel for schedule(static) collapse(2)
  for (long i = 0; i < n; i++) {
    for (long t = 0; t < threads; t++) {
      long r0 = t * rows_per, r1 = r0 + rows_per < hw ? r0 + rows_per : hw;
      if (r0 < r1) {
        affine_rows(x + (i * hw + r0) * c, ab + i * c, ab + n * c + i * c, r1 - r0, c, silu,
                    y + (i * hw + r0) * c);
      }
    }
  }
  free(s);
  free(ab);
  return 1;
}

/* Image i's input-gradient coefficients: a, b (the forward affine, for SiLU's input) from mean,
 * rstd, gamma, beta; and from its sums s1 = sum g, s2 = sum g x, per group with xc = x - mean,
 * m1 and m2 the group means of gamma g and gamma g xc: dx = g A + x B + C with A = r gamma,
 * B = -r^3 m2, C = mean r^3 m2 - r m1. Stores r sum(g xc) and sum g per channel in dgb. */
static void grad_coefficients(const double *s1, const double *s2, const float *gamma,
                              const float *mean, const float *rstd, long hw, long c,
                              long groups, float *A, float *B, float *C, double *dgb) {
  long cg = c / groups;
  double count = (double)(hw * cg);
  for (long g = 0; g < groups; g++) {
    double mu = mean[g], r = rstd[g], m1 = 0, m2 = 0;
    for (long j = g * cg; j < (g + 1) * cg; j++) {
      double gxc = s2[j] - mu * s1[j];
      m1 += gamma[j] * s1[j];
      m2 += gamma[j] * gxc;
      dgb[j] = r * gxc;
      dgb[c + j] = s1[j];
    }
    m1 /= count;
    m2 /= count;
    double r3m2 = r * r * r * m2;
    for (long j = g * cg; j < (g + 1) * cg; j++) {
      A[j] = (float)(r * gamma[j]);
      B[j] = (float)(-r3m2);
      C[j] = (float)(mu * r3m2 - r * m1);
    }
  }
}

/* The forward's per-channel affine of one image (a = gamma r, b = beta - mean gamma r; b = 0
 * without beta), which SiLU's input needs. */
static void forward_affine(const float *gamma, const float *beta, const float *mean,
                           const float *rstd, long c, long groups, float *a, float *b) {
  long cg = c / groups;
  for (long j = 0; j < c; j++) {
    float mu = mean[j / cg], r = rstd[j / cg];
    a[j] = gamma[j] * r;
    b[j] = beta ? beta[j] - mu * gamma[j] * r : 0.0f;
  }
}

/* dx = g A + x B + C over `rows` pixels of one image, g = dy (through SiLU(x a + b) with silu). */
static void grad_rows(const float *dy, const float *x, const float *a, const float *b,
                      const float *A, const float *B, const float *C, long rows, long c,
                      int silu, float *dx) {
  for (long r = 0; r < rows; r++) {
    const float *xr = x + r * c, *gr = dy + r * c;
    float *dr = dx + r * c;
    if (silu) {
      for (long j = 0; j < c; j++) {
        float g = silu_grad(gr[j], xr[j] * a[j] + b[j]);
        dr[j] = g * A[j] + xr[j] * B[j] + C[j];
      }
    } else {
      for (long j = 0; j < c; j++) dr[j] = gr[j] * A[j] + xr[j] * B[j] + C[j];
    }
  }
}

/* Gradient of diffuse_group_norm from dy (the gradient of y) and the forward's mean and rstd.
 * With silu, dy is first taken back through SiLU(u), u = x a + b recomputed from beta:
 * g = dy s (1 + u (1 - s)), s = sigmoid(u); else g = dy. Then dx as in grad_coefficients;
 * dgamma = sum over images of r sum(g xc), dbeta = sum of g (images added in order). As in the
 * forward, with one image per thread or more each thread takes whole images (sums, then dx).
 * Returns 0 when memory runs out. */
int diffuse_group_norm_grad(const float *dy, const float *x, const float *gamma,
                            const float *beta, const float *mean, const float *rstd, long n,
                            long hw, long c, long groups, int silu, float *dx, float *dgamma,
                            float *dbeta) {
  int threads = omp_get_max_threads();
  /* Per image: r sum(g xc) and sum g per channel, added over images in order at the end. */
  double *dgb = malloc((size_t)(2 * n * c) * sizeof(double));
  if (dgb == NULL) return 0;
  if (n >= threads) {
    /* Per thread: 2c float accumulators, 2c double sums, a, b, A, B, C (12c keeps the doubles
     * of every thread 8-byte aligned). */
    float *work = malloc((size_t)(threads * 12 * c) * sizeof(float));
    if (work == NULL) {
      free(dgb);
      return 0;
    }
#pragma omp parallel
    {
      float *acc = work + omp_get_thread_num() * 12 * c;
      double *d = (double *)(acc + 2 * c);
      float *a = acc + 6 * c, *b = a + c, *A = b + c, *B = A + c, *C = B + c;
#pragma omp for schedule(static)
      for (long i = 0; i < n; i++) {
        const float *mi = mean + i * groups, *ri = rstd + i * groups;
        forward_affine(gamma, beta, mi, ri, c, groups, a, b);
        for (long j = 0; j < 2 * c; j++) d[j] = 0;
        sum_range(silu ? 1 : 2, x, dy, a, b, i, 0, hw, hw, c, acc, d, d + c);
        grad_coefficients(d, d + c, gamma, mi, ri, hw, c, groups, A, B, C, dgb + i * 2 * c);
        grad_rows(dy + i * hw * c, x + i * hw * c, a, b, A, B, C, hw, c, silu, dx + i * hw * c);
      }
    }
    free(work);
  } else {
    double *s = malloc((size_t)(2 * n * c) * sizeof(double));
    float *coef = malloc((size_t)(5 * n * c) * sizeof(float));
    if (s == NULL || coef == NULL) {
      free(s);
      free(coef);
      free(dgb);
      return 0;
    }
    float *a = coef, *b = coef + n * c, *A = coef + 2 * n * c, *B = coef + 3 * n * c,
          *C = coef + 4 * n * c;
    for (long i = 0; i < n; i++) {
      forward_affine(gamma, beta, mean + i * groups, rstd + i * groups, c, groups, a + i * c,
                     b + i * c);
    }
    if (!channel_sums(silu ? 1 : 2, x, dy, a, b, n, hw, c, s, s + n * c)) {
      free(s);
      free(coef);
      free(dgb);
      return 0;
    }
    for (long i = 0; i < n; i++) {
      grad_coefficients(s + i * c, s + n * c + i * c, gamma, mean + i * groups,
                        rstd + i * groups, hw, c, groups, A + i * c, B + i * c, C + i * c,
                        dgb + i * 2 * c);
    }
    long rows_per = (hw + threads - 1) / threads;
#pragma omp parallel for schedule(static) collapse(2)
    for (long i = 0; i < n; i++) {
      for (long t = 0; t < threads; t++) {
        long r0 = t * rows_per, r1 = r0 + rows_per < hw ? r0 + rows_per : hw;
        if (r0 < r1) {
          long k = i * c, o = (i * hw + r0) * c;
          grad_rows(dy + o, x + o, a + k, b + k, A + k, B + k, C + k, r1 - r0, c, silu, dx + o);
        }
      }
    }
    free(s);
    free(coef);
  }
  for (long j = 0; j < c; j++) {
    double tg = 0, tb = 0;
    for (long i = 0; i < n; i++) {
      tg += dgb[i * 2 * c + j];
      tb += dgb[i * 2 * c + c + j];
    }
    dgamma[j] = (float)tg;
    dbeta[j] = (float)tb;
  }
  free(dgb);
  return 1;
}

/* max over j of scale x[j], in 16 lanes so that it vectorizes (GCC leaves a max reduction
 * scalar without -ffinite-math-only); a NaN among the values makes the row's softmax NaN anyway
 * (through the exponentials), as in tfjs. */
static inline float row_max(const float *x, long cols, float scale) {
  float lanes[16];
  for (int k = 0; k < 16; k++) lanes[k] = -INFINITY;
  long j = 0;
  for (; j + 16 <= cols; j += 16) {
    for (int k = 0; k < 16; k++) {
      float v = scale * x[j + k];
      lanes[k] = lanes[k] > v ? lanes[k] : v;
    }
  }
  float m = -INFINITY;
  for (int k = 0; k < 16; k++) m = m > lanes[k] ? m : lanes[k];
  for (; j < cols; j++) {
    float v = scale * x[j];
    m = m > v ? m : v;
  }
  return m;
}

/* Longest softmax row kept on the stack; longer rows normalize in place. */
#define SOFTMAX_ROW 4096

/* y = softmax(scale x) along each of `rows` rows of `cols` values: attention weights with the
 * 1 / sqrt(C) logit scale folded in (one pass instead of a scale and a softmax). The
 * exponentials of a row wait in an L1-sized buffer, so that y is written once. */
void diffuse_softmax(const float *x, long rows, long cols, float scale, float *y) {
#pragma omp parallel
  {
    float buf[SOFTMAX_ROW];
#pragma omp for schedule(static)
    for (long r = 0; r < rows; r++) {
      const float *xr = x + r * cols;
      float *yr = y + r * cols, *e = cols <= SOFTMAX_ROW ? buf : yr;
      float m = row_max(xr, cols, scale), sum = 0.0f;
      for (long j = 0; j < cols; j++) {
        e[j] = exp_approx(scale * xr[j] - m);
        sum += e[j];
      }
      float inv = 1.0f / sum;
      for (long j = 0; j < cols; j++) yr[j] = e[j] * inv;
    }
  }
}

/* Gradient of diffuse_softmax from its output y and dy: dx = scale y (dy - sum(dy y)) per row,
 * one pass where tfjs's gradient takes four ops (multiply, sum, subtract, multiply). */
void diffuse_softmax_grad(const float *y, const float *dy, long rows, long cols, float scale,
                          float *dx) {
#pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; r++) {
    const float *yr = y + r * cols, *gr = dy + r * cols;
    float *dr = dx + r * cols;
    float dot = 0.0f;
    for (long j = 0; j < cols; j++) dot += gr[j] * yr[j];
    for (long j = 0; j < cols; j++) dr[j] = scale * yr[j] * (gr[j] - dot);
  }
}

/* y [n, h, w, c] = scale * the sum of x [n, 2h, 2w, c] over each 2x2 window: 2x average pooling
 * (scale 1/4) and the gradient of nearest 2x upsampling (scale 1) in one pass. */
void diffuse_pool2x(const float *x, long n, long h, long w, long c, float scale, float *y) {
#pragma omp parallel for schedule(static)
  for (long r = 0; r < n * h; r++) {
    const float *top = x + 2 * r * (2 * w) * c, *bottom = top + 2 * w * c;
    float *yr = y + r * w * c;
    for (long j = 0; j < w; j++) {
      const float *a = top + 2 * j * c, *b = bottom + 2 * j * c;
      for (long k = 0; k < c; k++) yr[j * c + k] = scale * ((a[k] + a[c + k]) + (b[k] + b[c + k]));
    }
  }
}

/* y [n, 2h, 2w, c] = scale * x [n, h, w, c] repeated over each 2x2 window: nearest 2x upsampling
 * (scale 1) and the gradient of 2x average pooling (scale 1/4) in one pass. */
void diffuse_unpool2x(const float *x, long n, long h, long w, long c, float scale, float *y) {
#pragma omp parallel for schedule(static)
  for (long r = 0; r < n * h; r++) {
    const float *xr = x + r * w * c;
    float *top = y + 2 * r * (2 * w) * c, *bottom = top + 2 * w * c;
    for (long j = 0; j < w; j++) {
      for (long k = 0; k < c; k++) {
        float v = scale * xr[j * c + k];
        top[2 * j * c + k] = top[(2 * j + 1) * c + k] = v;
      }
    }
    memcpy(bottom, top, (size_t)(2 * w * c) * sizeof(float));
  }
}

/* out [rows, width] = columns [offset, offset + width) of x [rows, c]: one piece of a split along
 * the last axis (the gradient of a channel concatenation). */
void diffuse_copy_columns(const float *x, long rows, long c, long offset, long width,
                          float *out) {
#pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; r++) {
    memcpy(out + r * width, x + r * c + offset, (size_t)width * sizeof(float));
  }
}

/* out = scale (x + y), element-wise over `size` floats (the U-Net's (h + skip) / sqrt(2)). */
void diffuse_scaled_add(const float *x, const float *y, long size, float scale, float *out) {
#pragma omp parallel for schedule(static)
  for (long k = 0; k < size; k += 4096) {
    long e = k + 4096 < size ? k + 4096 : size;
    for (long q = k; q < e; q++) out[q] = scale * (x[q] + y[q]);
  }
}

/* out[i, j] = sum over the hw pixels of x[i, :, j] (float64 sums): the gradient of a per-image,
 * per-channel shift or (n = 1) of a bias. Returns 0 when memory runs out. */
int diffuse_channel_sums(const float *x, long n, long hw, long c, float *out) {
  double *s = malloc((size_t)(2 * n * c) * sizeof(double));
  if (s == NULL || !channel_sums(3, x, NULL, NULL, NULL, n, hw, c, s, s + n * c)) {
    free(s);
    return 0;
  }
  for (long k = 0; k < n * c; k++) out[k] = (float)s[k];
  free(s);
  return 1;
}

/* One Adam step in place on n parameters (training/adam.ts updateInPlace): the same
 * double-precision arithmetic as its JavaScript loop, rounded to float at the same places, so
 * both paths give the same floats bit for bit; hence no reassociation, reciprocals or fused
 * multiply-adds here, whatever the file's flags. nan_to_num maps a NaN gradient to 0 and
 * +-Infinity to +-1e5 first. */
__attribute__((optimize("no-associative-math", "no-reciprocal-math", "fp-contract=off")))
void diffuse_adam(float *p, float *m, float *v, const float *g, long n, double beta1, double beta2,
                  double eps, double step_size, double root_correction, int nan_to_num) {
  const double c1 = 1.0 - beta1, c2 = 1.0 - beta2;
#pragma omp parallel for schedule(static) if (n >= 32768)
  for (long i = 0; i < n; i++) {
    double gi = g[i];
    if (nan_to_num && !(fabs(gi) <= 3.5e38)) gi = gi != gi ? 0.0 : gi > 0 ? 1e5 : -1e5;
    const float mi = (float)(beta1 * m[i] + c1 * gi);
    const float vi = (float)(beta2 * v[i] + c2 * (gi * gi));
    m[i] = mi;
    v[i] = vi;
    p[i] = (float)(p[i] - step_size * (mi / (sqrt((double)vi) / root_correction + eps)));
  }
}
