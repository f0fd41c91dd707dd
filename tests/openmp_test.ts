import * as assert from "node:assert/strict";
import { OPENMP_SPIN_COUNT } from "../core/_openmp.ts";

// chooseOpenMpWait acts once per process, so each case runs in a fresh one.
async function envAfter(calls: string, env: Record<string, string> = {}): Promise<string> {
  const url = new URL("../core/_openmp.ts", import.meta.url).href;
  const code = `import { chooseOpenMpWait } from "${url}"; ${calls}; ` +
    `console.log(JSON.stringify([Deno.env.get("OMP_WAIT_POLICY"), Deno.env.get("GOMP_SPINCOUNT")]));`;
  const clean = { ...Deno.env.toObject(), ...env };
  if (!("OMP_WAIT_POLICY" in env)) delete clean.OMP_WAIT_POLICY;
  if (!("GOMP_SPINCOUNT" in env)) delete clean.GOMP_SPINCOUNT;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", code],
    env: clean,
    clearEnv: true,
    stdout: "piped",
  }).output();
  assert.ok(out.success);
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test("chooseOpenMpWait: a bounded spin with oneDNN, passive waits without, once", async () => {
  assert.equal(await envAfter("chooseOpenMpWait(true)"), `[null,"${OPENMP_SPIN_COUNT}"]`);
  assert.equal(await envAfter("chooseOpenMpWait(false)"), `["PASSIVE",null]`);
  // The first choice stands: libgomp has read it by the second library.
  assert.equal(
    await envAfter("chooseOpenMpWait(true); chooseOpenMpWait(false)"),
    `[null,"${OPENMP_SPIN_COUNT}"]`,
  );
  // A library that failed to open takes its choice back.
  assert.equal(
    await envAfter("chooseOpenMpWait(true)(); chooseOpenMpWait(false)"),
    `["PASSIVE",null]`,
  );
});

Deno.test("chooseOpenMpWait keeps what the user set", async () => {
  assert.equal(
    await envAfter("chooseOpenMpWait(true)", { OMP_WAIT_POLICY: "ACTIVE" }),
    `["ACTIVE",null]`,
  );
  assert.equal(
    await envAfter("chooseOpenMpWait(false)", { GOMP_SPINCOUNT: "5" }),
    `[null,"5"]`,
  );
});
