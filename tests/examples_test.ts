/**
 * The cluster examples pass a dry validation here: the Kubernetes manifests parse (npm `yaml`)
 * and agree with the toolkit (tasks that exist, an Indexed Job whose DIFFUSE_SHARD_COUNT is its
 * completions, a merge Job on the same volume and folder), the Slurm scripts pass `bash -n` (and
 * shellcheck where installed), and the array and merge dependency are wired as README says.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

const ROOT = new URL("..", import.meta.url).pathname;
const TASKS = Object.keys(JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks);

// deno-lint-ignore no-explicit-any
type Doc = any;

async function yamlDocs(file: string): Promise<Doc[]> {
  const docs = parseAllDocuments(await Deno.readTextFile(join(ROOT, "examples", "k8s", file)));
  for (const d of docs) assert.deepEqual(d.errors, [], `${file}: ${d.errors}`);
  return docs.map((d) => d.toJS());
}

async function run(cmd: string, args: string[]): Promise<{ code: number; out: string } | null> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function flagValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

Deno.test("the Kubernetes Indexed Job and its merge Job agree on tasks, shard count, volume and folder", async () => {
  const [pvc, job] = await yamlDocs("eval-shards.yaml");
  const [merge] = await yamlDocs("merge-job.yaml");
  assert.equal(pvc.kind, "PersistentVolumeClaim");
  assert.deepEqual(pvc.spec.accessModes, ["ReadWriteMany"]);
  assert.equal(job.apiVersion, "batch/v1");
  assert.equal(job.kind, "Job");
  assert.equal(job.spec.completionMode, "Indexed");
  assert.equal(job.spec.template.spec.restartPolicy, "Never");
  const [shard] = job.spec.template.spec.containers;
  const count = shard.env.find((e: Doc) => e.name === "DIFFUSE_SHARD_COUNT")?.value;
  assert.equal(count, String(job.spec.completions), "DIFFUSE_SHARD_COUNT = spec.completions");
  assert.ok(TASKS.includes(shard.args[0]), `${shard.args[0]} is a task`);
  const [merger] = merge.spec.template.spec.containers;
  assert.equal(merger.args[0], "eval:merge");
  assert.equal(
    merger.args[1],
    flagValue(shard.args, "--out-dir"),
    "merge reads the shards' folder",
  );
  for (const j of [job, merge]) {
    const spec = j.spec.template.spec;
    assert.equal(spec.volumes[0].persistentVolumeClaim.claimName, pvc.metadata.name);
    assert.equal(spec.containers[0].volumeMounts[0].name, spec.volumes[0].name);
    assert.ok(
      flagValue(shard.args, "--out-dir")!.startsWith(spec.containers[0].volumeMounts[0].mountPath),
    );
  }
  const containerfile = await Deno.readTextFile(join(ROOT, "examples", "k8s", "Containerfile"));
  const ci = await Deno.readTextFile(join(ROOT, ".ci", "run"));
  const pinned = ci.match(/DENO_VERSION=([\d.]+)/)![1];
  assert.match(containerfile, new RegExp(`npm install -g deno@${pinned.replaceAll(".", "\\.")}`));
  assert.match(containerfile, /libopenblas0-pthread/);
  assert.match(containerfile, /libdnnl2/);
  assert.match(containerfile, /ENTRYPOINT \["deno", "task"\]/);
});

Deno.test("the Slurm array, merge step and submit script pass bash -n (and shellcheck) and are wired together", async () => {
  const dir = join(ROOT, "examples", "slurm");
  const scripts = ["eval_shards.sbatch", "merge.sbatch", "submit.sh"].map((f) => join(dir, f));
  for (const s of [...scripts, join(ROOT, "examples", "k8s", "run.sh")]) {
    const r = await run("bash", ["-n", s]);
    assert.equal(r?.code, 0, `${s}: ${r?.out}`);
    const lint = await run("shellcheck", [s]);
    if (lint === null) console.log("shellcheck not installed: skipped");
    else assert.equal(lint.code, 0, lint.out);
  }
  const shards = await Deno.readTextFile(scripts[0]);
  assert.match(shards, /^#SBATCH --array=\d+-\d+/m);
  assert.match(shards, /deno task eval /);
  assert.match(await Deno.readTextFile(scripts[1]), /deno task eval:merge /);
  const submit = await Deno.readTextFile(scripts[2]);
  assert.match(submit, /sbatch --parsable .*eval_shards\.sbatch/);
  assert.match(submit, /--dependency="afterok:\$array".*merge\.sbatch/);
});
