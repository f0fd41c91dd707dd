import assert from "node:assert/strict";
import { join, relative } from "node:path";

// A synchronous read of a GPU tensor cannot work on the webgpu backend in Deno (issue #18):
// library, tasks, recipes and bench read with `await t.data()`. Tests may read synchronously
// (they run on cpu or wasm).
const ROOT = new URL("..", import.meta.url).pathname;
const SKIP = new Set(["tests", "node_modules", "runs", ".git", ".deno"]);
const SYNC_READ = /\.\s*(dataSync|arraySync|bufferSync)\s*\(/;

async function* sources(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory && !SKIP.has(entry.name)) yield* sources(path);
    else if (entry.isFile && entry.name.endsWith(".ts")) yield path;
  }
}

Deno.test("no dataSync/arraySync/bufferSync call outside tests/", async () => {
  const offenders: string[] = [];
  let files = 0;
  for await (const path of sources(ROOT)) {
    files++;
    const lines = (await Deno.readTextFile(path)).split("\n");
    lines.forEach((line, i) => {
      // A read the code cannot avoid says why on the line above (the flows' float64 host maths).
      if (i > 0 && lines[i - 1].includes("sync-read-ok:")) return;
      if (SYNC_READ.test(line)) offenders.push(`${relative(ROOT, path)}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.ok(files > 50, `scanned only ${files} files under ${ROOT}`);
  assert.deepEqual(offenders, [], "use `await t.data()` instead");
});
