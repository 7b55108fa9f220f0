export * from "./client.js";
export * from "./worker.js";
export type { components, operations, paths } from "./openapi.js";
