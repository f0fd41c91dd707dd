import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { perImageNoise } from "../core/noise.ts";
import type { EpsPredictor } from "../models/ddpm_param.ts";
import { ddpmProcess } from "../schedules/ddpm.ts";
import { ddpmBound } from "../eval/ddpm_bound.ts";
import {
  approxStandardNormalCdf,
  referenceDiscretizedGaussianLogLikelihood,
} from "../eval/discretized_gaussian_reference.ts";
import { ddpmVlbTerms } from "../training/ddpm_loss.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// A toy chain and a toy linear predictor eps(x_t) = 0.3 x_t + 0.2, so every quantity is a
// scalar formula per pixel that this file evaluates by hand in float64.
const PROCESS = ddpmProcess({ T: 3, betaStart: 0.05, betaEnd: 0.4 });
const EPS: EpsPredictor = (xt) => tf.tidy(() => tf.add(tf.mul(xt, 0.3), 0.2));
const X0 = [-1, -1 + 2 / 255 * 40, 1 / 255, 1, 2 * 200 / 255 - 1];
const Z = [0.7, -1.3, 2.1, -0.4, 1.9];

const phi = (z: number) => 0.5 * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z ** 3)));

/** The reference code's _vb_terms_bpd for one image, by hand (bits/dim). */
function handTerm(t: number): number {
  const { betas, alphas, alphaBar, posteriorVariance: pv } = PROCESS;
  const ab = alphaBar[t], abPrev = alphaBar[t - 1];
  const c0 = betas[t] * Math.sqrt(abPrev) / (1 - ab);
  const cx = (1 - abPrev) * Math.sqrt(alphas[t]) / (1 - ab);
  let sum = 0;
  X0.forEach((x0, i) => {
    const xt = Math.sqrt(ab) * x0 + Math.sqrt(1 - ab) * Z[i];
    const eps = 0.3 * xt + 0.2;
    const x0Hat = Math.min(1, Math.max(-1, (xt - Math.sqrt(1 - ab) * eps) / Math.sqrt(ab)));
    const modelMean = c0 * x0Hat + cx * xt;
    if (t === 1) {
      const std = Math.sqrt(pv[2]);
      const plus = phi((x0 - modelMean + 1 / 255) / std),
        minus = phi((x0 - modelMean - 1 / 255) / std);
      const p = x0 < -0.999 ? plus : x0 > 0.999 ? 1 - minus : plus - minus;
      sum += -Math.log(Math.max(p, 1e-12));
    } else {
      const trueMean = c0 * x0 + cx * xt;
      const s2 = betas[t], bt = pv[t];
      sum += 0.5 * (-1 + Math.log(s2) - Math.log(bt) + bt / s2 + (trueMean - modelMean) ** 2 / s2);
    }
  });
  return sum / X0.length / Math.LN2;
}

Deno.test("ddpmVlbTerms() in the reference convention matches the reference code's terms computed by hand", () => {
  const x0 = tf.tensor2d([X0]);
  const noise = tf.tensor2d([Z]);
  for (const t of [1, 2, 3]) {
    const { terms, x0Hat } = ddpmVlbTerms(EPS, x0, {
      process: PROCESS,
      t,
      noise,
      convention: "reference",
    });
    const got = terms.dataSync()[0], want = handTerm(t);
    assert.ok(
      Math.abs(got - want) < 1e-6 * Math.max(1, Math.abs(want)),
      `t=${t}: ${got} vs ${want}`,
    );
    assert.ok(x0Hat.dataSync().every((v) => v >= -1 && v <= 1), "x0-hat is clipped");
    tf.dispose([terms, x0Hat]);
  }
  tf.dispose([x0, noise]);
});

Deno.test("reference and exact conventions agree where clipping, the CDF and the decoder variance do not matter", () => {
  // Mid-range pixels, an accurate predictor (x0-hat inside [-1, 1]), t >= 2: KLs are identical.
  const x0 = tf.tensor2d([[0.1, -0.2, 0.3]]);
  const noise = tf.tensor2d([[0.5, -0.5, 0.2]]);
  const eps: EpsPredictor = () => tf.tensor2d([[0.45, -0.55, 0.25]]);
  for (const t of [2, 3]) {
    const a = ddpmVlbTerms(eps, x0, { process: PROCESS, t, noise });
    const b = ddpmVlbTerms(eps, x0, { process: PROCESS, t, noise, convention: "reference" });
    const [av, bv] = [a.terms.dataSync()[0], b.terms.dataSync()[0]];
    assert.ok(Math.abs(av - bv) < 1e-5 * Math.abs(av), `t=${t}: exact ${av} vs reference ${bv}`);
    tf.dispose([a.terms, a.x0Hat, b.terms, b.x0Hat]);
  }
  tf.dispose([x0, noise]);
});

Deno.test("the tanh CDF is within 2e-4 of the normal CDF, and the reference likelihood clamps at 1e-12", () => {
  const z = tf.linspace(-5, 5, 101);
  const approx = approxStandardNormalCdf(z).dataSync();
  const zs = z.dataSync();
  // Normal CDF via erf series (Abramowitz-Stegun 7.1.26 is too coarse; integrate numerically).
  const cdf = (x: number) => {
    let s = 0;
    const n = 4000, lo = -12;
    for (let i = 0; i < n; i++) {
      const u = lo + (x - lo) * (i + 0.5) / n;
      s += Math.exp(-u * u / 2);
    }
    return s * (x - lo) / n / Math.sqrt(2 * Math.PI);
  };
  zs.forEach((v, i) => assert.ok(Math.abs(approx[i] - cdf(v)) < 2e-4, `z=${v}`));
  const ll = referenceDiscretizedGaussianLogLikelihood(tf.tensor1d([0, 1, -1]), {
    mean: tf.tensor1d([0.9, -1, 1]),
    std: 0.001,
  }).dataSync();
  ll.forEach((v) => assert.ok(Math.abs(v - Math.log(1e-12)) < 1e-4, `${v}`));
  z.dispose();
});

Deno.test("ddpmBound() takes the reference convention and reports its decoder term", async () => {
  const x0 = tf.tensor2d([X0]);
  const exact = await ddpmBound(EPS, x0, { process: PROCESS, noise: perImageNoise([0]) });
  const ref = await ddpmBound(EPS, x0, {
    process: PROCESS,
    noise: perImageNoise([0]),
    convention: "reference",
  });
  assert.equal(exact.prior[0], ref.prior[0]);
  assert.notEqual(exact.decoder[0], ref.decoder[0]);
  await assert.rejects(
    () =>
      ddpmBound(EPS, x0, {
        process: PROCESS,
        noise: perImageNoise([0]),
        convention: "x" as unknown as "exact",
      }),
    RangeError,
  );
  x0.dispose();
});
