import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import { Rng } from "../core/rng.ts";
import { idealGaussianDenoiser } from "../models/ideal_denoiser.ts";
import { SCORE_SDE_NAMES, scoreSdeSchedule } from "../schedules/score_sde.ts";
import { sdeLikelihood, sdeLikelihoodRange } from "../eval/sde_likelihood.ts";

await selectBackend({ backend: "cpu", log: () => {} });

const MU = 0.2, S = 0.5;
const rows = [[0.1, -0.3], [0.9, 0.4], [-0.6, 0.2]];

// -log N(x; m, v I) per row.
function gaussNll(m: number, v: number): number[] {
  return rows.map((r) =>
    r.reduce((acc, xi) => acc + 0.5 * Math.log(2 * Math.PI * v) + (xi - m) ** 2 / (2 * v), 0)
  );
}

Deno.test("PF-ODE likelihood of Gaussian data matches the exact log-density for VE, VP and sub-VP", async () => {
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const { sigmaMin } = sdeLikelihoodRange(schedule);
    const x = tf.tensor2d(rows);
    const r = await sdeLikelihood(idealGaussianDenoiser({ mean: MU, std: S }), x, {
      schedule,
      rng: new Rng(0),
      dequantize: false,
      probe: "exact",
    });
    // The density at eps: x + sigma_edm(eps) n with x ~ N(MU, S^2). The N(0, sigma(T)^2) prior
    // stands in for N(MU alpha, ...): an error of about MU |x_T| / sigma_edm(T)^2 per dimension.
    const exact = gaussNll(MU, S * S + sigmaMin * sigmaMin);
    r.nll.forEach((v, i) =>
      assert.ok(Math.abs(v - exact[i]) < 0.02, `${name} row ${i}: ${v} vs ${exact[i]}`)
    );
    x.dispose();
  }
});

Deno.test("PF-ODE likelihood up to an intermediate t with the exact marginal as prior is exact", async () => {
  for (const name of SCORE_SDE_NAMES) {
    const schedule = scoreSdeSchedule(name);
    const tEnd = 0.4, a = schedule.alpha(tEnd);
    const v = a * a * S * S + schedule.sigma(tEnd) ** 2;
    const { sigmaMin } = sdeLikelihoodRange(schedule);
    const x = tf.tensor2d(rows);
    let priorCalls = 0;
    const r = await sdeLikelihood(idealGaussianDenoiser({ mean: MU, std: S }), x, {
      schedule,
      tEnd,
      rng: new Rng(0),
      dequantize: false,
      probe: "exact",
      rtol: 1e-7,
      atol: 1e-7,
      // The exact marginal of z at tEnd: N(alpha MU, alpha^2 S^2 + sigma^2).
      prior: (z, shape) => {
        priorCalls++;
        const n = shape[0], dim = z.length / n;
        return Float64Array.from({ length: n }, (_, i) => {
          let lp = 0;
          for (let d = 0; d < dim; d++) {
            lp -= 0.5 * Math.log(2 * Math.PI * v) + (z[i * dim + d] - a * MU) ** 2 / (2 * v);
          }
          return lp;
        });
      },
    });
    assert.equal(priorCalls, 1);
    const exact = gaussNll(MU, S * S + sigmaMin * sigmaMin);
    r.nll.forEach((val, i) =>
      assert.ok(Math.abs(val - exact[i]) < 2e-4, `${name} row ${i}: ${val} vs ${exact[i]}`)
    );
    x.dispose();
  }
  assert.throws(() => sdeLikelihoodRange(scoreSdeSchedule("vp"), { eps: 0.5, tEnd: 0.4 }), /eps/);
});
