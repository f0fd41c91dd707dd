/**
 * Shared assertion of the trainers' divergence tests: a run that blew up within a few steps of
 * its every checkpoint leaves none to resume from (checkpoint_history.ts): the run's checkpoint
 * is moved aside as `checkpoint-unconfirmed.safetensors`, never left at the resume path.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readRunCheckpoint } from "../training/run_checkpoint.ts";

/** Asserts the state of `dir` after a run stopped with `message` ("loss became X at step N"). */
export async function assertNothingUnconfirmedToResume(
  dir: string,
  message: string,
): Promise<void> {
  const m = message.match(/loss became (\S+) at step (\d+)/);
  assert.ok(m, message);
  assert.match(message, /no checkpoint had been confirmed healthy/);
  const atResumePath = await Deno.stat(join(dir, "checkpoint.safetensors")).then(
    () => true,
    () => false,
  );
  assert.equal(atResumePath, false);
  const aside = await readRunCheckpoint<{ step: number }>(
    join(dir, "checkpoint-unconfirmed.safetensors"),
  );
  assert.ok(aside.state.step < Number(m[2]));
  aside.dispose();
}
