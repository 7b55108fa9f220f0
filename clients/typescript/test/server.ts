// Starts a real `ordo serve` for the tests: the binary `make ts-client`
// builds (ORDO_BIN, default bin/ordo at the repository's root), a SQLite
// database in a temporary directory, a port the server picks on loopback
// (--listen 127.0.0.1:0, read back from its "ordo: serving URL" line), a
// signing key so that it makes checkpoints (every second), and a token of
// a tenant of the run's own made with `ordo token create`.

import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { randomBytes } from "node:crypto";

import { OrdoClient, type ClientOptions } from "../src/index.js";

const run = promisify(execFile);

export interface Server {
  url: string;
  tenant: string;
  token: string;
  client(opts?: Partial<ClientOptions>): OrdoClient;
  /** Another tenant's token, for 403 tests. */
  otherToken: string;
  stop(): Promise<void>;
}

const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));
export const ordoBin = process.env.ORDO_BIN || join(repoRoot, "bin", "ordo");

export async function startServer(): Promise<Server> {
  const dir = await mkdtemp(join(tmpdir(), "ordo-ts-"));
  const db = `sqlite:${join(dir, "ordo.db")}`;
  await run(ordoBin, ["keygen", "--name", "ts-node", "--out", join(dir, "node")]);
  const child = spawn(ordoBin, ["serve", "--db", db, "--node", "ts-node", "--listen", "127.0.0.1:0"], {
    env: {
      ...process.env,
      Scheduler__Queue__Hlc__EnableHlcOrdering: "true",
      Ordo__Audit__SigningKeyFile: join(dir, "node.key"),
      Ordo__Audit__CheckpointInterval: "1s",
      Ordo__Audit__VerifyInterval: "0",
      Ordo__Log__Level: "warn",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  let url: string;
  try {
    url = await serving(child, () => stderr);
  } catch (err) {
    child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const tenant = `ts-${randomBytes(4).toString("hex")}`;
  const token = await createToken(db, tenant);
  const otherToken = await createToken(db, `${tenant}-other`);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    url,
    tenant,
    token,
    otherToken,
    client: (opts = {}) => new OrdoClient({ baseUrl: url, token, tenant, timeoutMs: 10_000, ...opts }),
    async stop() {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(killer);
      if (child.exitCode !== 0 && child.signalCode === null && child.exitCode !== null) {
        process.stderr.write(`ordo serve exited ${child.exitCode}:\n${stderr}\n`);
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function createToken(db: string, tenant: string): Promise<string> {
  const { stdout } = await run(ordoBin, ["token", "create", "--db", db, "--tenant", tenant, "--name", "ts-client-test"]);
  return (JSON.parse(stdout) as { token: string }).token;
}

/** The URL of the server's "ordo: serving URL (...)" line, within 20s. */
function serving(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`ordo serve did not start within 20s:\n${out}\n${stderr()}`)), 20_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^ordo: serving (http:\/\/127\.0\.0\.1:\d+) /m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`ordo serve exited (${code}) before serving:\n${out}\n${stderr()}`));
    });
  });
}
