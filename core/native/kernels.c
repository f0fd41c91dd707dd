/*
 * Fused memory-bound kernels of the U-Net on NHWC float32 data, on OpenMP threads (libgomp, the
 * runtime oneDNN already loaded, so both share one thread pool).
 *
 * Not tied to a paper: engine work (issue "The main job on both cores"). oneDNN 2.6 has no group
 * normalization, and its binary post-ops run reference code, so a GroupNorm + SiLU on oneDNN is
 * six passes over the activations (square, two sums, scale, shift, swish) and its gradient six
 * more; here the forward is two passes (statistics, then normalize + activate) and the gradient
 * two (statistics of the SiLU-backed-through gradient, then the input gradient), each pass on
 * every thread. core/native/kernels.ts builds this file with the system C compiler and binds it
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

/* Per image i and channel j, over its pixels: s1 = sum of f, s2 = sum of f x, where f is x
 * itself (mode 0; mode 3: s1 alone), the gradient dy (mode 2), or dy taken back through
 * SiLU(x a + b) (mode 1, a and b per image and channel). Each image's pixels are split into `chunks` ranges so that a batch smaller than
 * the thread count still fills the threads; partial sums are added in a fixed order, so results
 * do not depend on the thread count. */
static int channel_sums(int mode, const float *x, const float *dy, const float *a, const float *b,
                        long n, long hw, long c, double *s1, double *s2) {
  int threads = omp_get_max_threads();
  long chunks = n >= threads ? 1 : (threads + n - 1) / n;
  if (chunks > hw) chunks = hw;
  long tasks = n * chunks;
  double *part = calloc((size_t)(tasks * 2 * c), sizeof(double));
  if (part == NULL) return 0;
  int failed = 0;
#pragma omp parallel
  {
    float *acc = malloc((size_t)(2 * c) * sizeof(float));
    if (acc == NULL) {
#pragma omp atomic write
      failed = 1;
    }
#pragma omp for schedule(static)
    for (long t = 0; t < tasks; t++) {
      if (acc == NULL) continue;
      long i = t / chunks, k = t % chunks;
      long p0 = hw * k / chunks, p1 = hw * (k + 1) / chunks;
      double *d1 = part + t * 2 * c, *d2 = d1 + c;
      const float *ai = a ? a + i * c : NULL, *bi = b ? b + i * c : NULL;
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
    free(acc);
  }
  if (failed) {
    free(part);
    return 0;
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
  return 1;
}

/* y = act(x a + b) with a, b per image and channel; act is SiLU when silu != 0. */
static void apply_affine(const float *x, const float *a, const float *b, long n, long hw, long c,
                         int silu, float *y) {
#pragma omp parallel for schedule(static)
  for (long r = 0; r < n * hw; r++) {
    long i = r / hw;
    const float *xr = x + r * c, *ai = a + i * c, *bi = b + i * c;
    float *yr = y + r * c;
    if (silu) {
      for (long j = 0; j < c; j++) {
        float u = xr[j] * ai[j] + bi[j];
        yr[j] = u * sigmoidf(u);
      }
    } else {
      for (long j = 0; j < c; j++) yr[j] = xr[j] * ai[j] + bi[j];
    }
  }
}

/* Group normalization of x [n, hw, c] in `groups` contiguous channel groups, optionally followed
 * by SiLU: y = act(gamma (x - mean) r + beta), r = 1 / sqrt(var + eps), var = E[x^2] - mean^2
 * (biased, in double). Writes y and the per-image, per-group mean and r ([n, groups]).
 * Returns 0 when memory runs out (nothing written), else 1. */
int diffuse_group_norm(const float *x, const float *gamma, const float *beta, long n, long hw,
                       long c, long groups, float eps, int silu, float *y, float *mean,
                       float *rstd) {
  long cg = c / groups;
  double *s = malloc((size_t)(2 * n * c) * sizeof(double));
  float *ab = malloc((size_t)(2 * n * c) * sizeof(float));
  if (s == NULL || ab == NULL || !channel_sums(0, x, NULL, NULL, NULL, n, hw, c, s, s + n * c)) {
    free(s);
    free(ab);
    return 0;
  }
  double count = (double)(hw * cg);
  for (long i = 0; i < n; i++) {
    for (long g = 0; g < groups; g++) {
      double m1 = 0, m2 = 0;
      for (long j = g * cg; j < (g + 1) * cg; j++) {
        m1 += s[i * c + j];
        m2 += s[n * c + i * c + j];
      }
      double mu = m1 / count, var = m2 / count - mu * mu;
      double r = 1.0 / sqrt((var > 0 ? var : 0) + eps);
      mean[i * groups + g] = (float)mu;
      rstd[i * groups + g] = (float)r;
      for (long j = g * cg; j < (g + 1) * cg; j++) {
        ab[i * c + j] = (float)(gamma[j] * r);
        ab[n * c + i * c + j] = (float)(beta[j] - mu * gamma[j] * r);
      }
    }
  }
  apply_affine(x, ab, ab + n * c, n, hw, c, silu, y);
  free(s);
  free(ab);
  return 1;
}

/* Gradient of diffuse_group_norm from dy (the gradient of y) and the forward's mean and rstd.
 * With silu, dy is first taken back through SiLU(u), u = x a + b recomputed from beta:
 * g = dy s (1 + u (1 - s)), s = sigmoid(u); else g = dy. Then, per image and group, with
 * xc = x - mean, m1 and m2 the group means of gamma g and gamma g xc:
 * dx = r (gamma g - m1) - r^3 xc m2, written dx = g A + x B + C per image and channel;
 * dgamma = sum over images of r sum(g xc), dbeta = sum of g. Returns 0 when memory runs out. */
int diffuse_group_norm_grad(const float *dy, const float *x, const float *gamma,
                            const float *beta, const float *mean, const float *rstd, long n,
                            long hw, long c, long groups, int silu, float *dx, float *dgamma,
                            float *dbeta) {
  long cg = c / groups;
  double *s = malloc((size_t)(2 * n * c) * sizeof(double));
  float *coef = malloc((size_t)(5 * n * c) * sizeof(float));
  if (s == NULL || coef == NULL) {
    free(s);
    free(coef);
    return 0;
  }
  float *a = coef, *b = coef + n * c, *ca = coef + 2 * n * c, *cb = coef + 3 * n * c,
        *cc = coef + 4 * n * c;
  for (long i = 0; i < n; i++) {
    for (long j = 0; j < c; j++) {
      long g = j / cg;
      float mu = mean[i * groups + g], r = rstd[i * groups + g];
      a[i * c + j] = gamma[j] * r;
      b[i * c + j] = beta ? beta[j] - mu * gamma[j] * r : 0.0f;
    }
  }
  if (!channel_sums(silu ? 1 : 2, x, dy, a, b, n, hw, c, s, s + n * c)) {
    free(s);
    free(coef);
    return 0;
  }
  double count = (double)(hw * cg);
  double *dg = calloc((size_t)(2 * c), sizeof(double));
  if (dg == NULL) {
    free(s);
    free(coef);
    return 0;
  }
  for (long i = 0; i < n; i++) {
    for (long g = 0; g < groups; g++) {
      double mu = mean[i * groups + g], r = rstd[i * groups + g], m1 = 0, m2 = 0;
      for (long j = g * cg; j < (g + 1) * cg; j++) {
        long k = i * c + j;
        double s1 = s[k], gxc = s[n * c + k] - mu * s1;
        m1 += gamma[j] * s1;
        m2 += gamma[j] * gxc;
        dg[j] += r * gxc;
        dg[c + j] += s1;
      }
      m1 /= count;
      m2 /= count;
      double r3m2 = r * r * r * m2;
      for (long j = g * cg; j < (g + 1) * cg; j++) {
        ca[i * c + j] = (float)(r * gamma[j]);
        cb[i * c + j] = (float)(-r3m2);
        cc[i * c + j] = (float)(mu * r3m2 - r * m1);
      }
    }
  }
  for (long j = 0; j < c; j++) {
    dgamma[j] = (float)dg[j];
    dbeta[j] = (float)dg[c + j];
  }
#pragma omp parallel for schedule(static)
  for (long row = 0; row < n * hw; row++) {
    long i = row / hw;
    const float *xr = x + row * c, *gr = dy + row * c;
    const float *ai = a + i * c, *bi = b + i * c;
    const float *A = ca + i * c, *B = cb + i * c, *C = cc + i * c;
    float *dr = dx + row * c;
    if (silu) {
      for (long j = 0; j < c; j++) {
        float g = silu_grad(gr[j], xr[j] * ai[j] + bi[j]);
        dr[j] = g * A[j] + xr[j] * B[j] + C[j];
      }
    } else {
      for (long j = 0; j < c; j++) dr[j] = gr[j] * A[j] + xr[j] * B[j] + C[j];
    }
  }
  free(dg);
  free(s);
  free(coef);
  return 1;
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
