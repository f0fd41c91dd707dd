import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { selectBackend } from "../core/engine.ts";
import type { Network } from "../core/types.ts";
import { iddpmCoefficients, iddpmPrecond } from "../models/precond_iddpm.ts";
import { iddpmSchedule } from "../schedules/iddpm.ts";

await selectBackend({ backend: "cpu", log: () => {} });

// F(x; c_noise) = c_noise everywhere, so c_noise = (D - x) / c_out = (x - D) / sigma.
const probe: Network = (x, cNoise) =>
  tf.tidy(() => tf.mul(tf.onesLike(x), tf.reshape(cNoise, [-1, 1])));

Deno.test("iDDPM c_noise: 'edm' rounding gives -1 below u_{M-1}/2 like NVlabs/edm, 'trained' stays at 0", () => {
  const { u, M } = iddpmSchedule();
  const low = u[M - 1] * 0.4, high = u[M - 1] * 0.6;
  assert.equal(iddpmCoefficients(low).cNoise, 0);
  assert.equal(iddpmCoefficients(low, { indexRounding: "edm" }).cNoise, -1);
  assert.equal(iddpmCoefficients(high, { indexRounding: "edm" }).cNoise, 0);
  assert.equal(iddpmCoefficients(u[500], { indexRounding: "edm" }).cNoise, M - 1 - 500);
  for (const rounding of ["trained", "edm"] as const) {
    const d = iddpmPrecond(probe, { indexRounding: rounding });
    const sigmas = [low, high, u[500] * 1.0001];
    const x = tf.zeros([3, 2]);
    const out = d(x, tf.tensor1d(sigmas));
    const v = out.dataSync();
    sigmas.forEach((s, i) => {
      const cNoise = -v[2 * i] / s;
      const want = iddpmCoefficients(s, { indexRounding: rounding }).cNoise;
      assert.ok(
        Math.abs(cNoise - want) < 1e-3 * Math.max(1, Math.abs(want)),
        `${rounding}: ${cNoise} vs ${want}`,
      );
    });
    tf.dispose([x, out]);
  }
  // roundSigma includes u_M = 0 in both.
  assert.equal(iddpmPrecond(probe).roundSigma(0), 0);
});
