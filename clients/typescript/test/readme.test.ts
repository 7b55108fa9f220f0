// The README's example is examples/worker.ts, which the build compiles.

import { it } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

it("README.md's example is examples/worker.ts, importing the package by name", async () => {
  const root = new URL("../../", import.meta.url);
  const readme = await readFile(new URL("README.md", root), "utf8");
  const example = await readFile(new URL("examples/worker.ts", root), "utf8");
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  assert.equal(blocks.length, 1, "README.md has one ```ts block");
  assert.equal(blocks[0], example.replace('"../src/index.js"', '"@ordo-sched/client"'));
});
