// GET /v1/info: the daemon's version and node, what its kernel offers (the probe made at
// start, core/kernel-info.ts) and the datapath it runs with the state of the CONTINUE guard,
// with a fastify response schema (docs/openapi.yaml, InfoResponse).

import type { FastifyInstance } from "fastify";
import type { KernelInfo } from "../core/kernel-info.js";
import type { DatapathInfo } from "./context.js";

export interface InfoResponse {
  readonly version: string;
  readonly node: string;
  readonly kernel: KernelInfo;
  readonly datapath: DatapathInfo;
}

const feature = {
  type: "object",
  required: ["name", "since", "need", "available", "use", "without"],
  additionalProperties: false,
  properties: {
    name: { type: "string" },
    since: { type: "string" },
    need: { type: "string", enum: ["required", "optional", "bpf", "unused"] },
    available: { type: ["boolean", "null"] },
    reason: { type: "string" },
    use: { type: "string" },
    without: { type: "string" },
  },
} as const;

export const INFO_SCHEMA = {
  summary: "The daemon's version and node, and what its kernel offers (probed at start).",
  tags: ["daemon"],
  response: {
    200: {
      type: "object",
      required: ["version", "node", "kernel", "datapath"],
      additionalProperties: false,
      properties: {
        version: { type: "string" },
        node: { type: "string" },
        kernel: {
          type: "object",
          required: ["release", "machine", "cgroup2", "bpffs", "features"],
          additionalProperties: false,
          properties: {
            release: { type: "string" },
            machine: { type: "string" },
            cgroup2: { type: ["string", "null"] },
            bpffs: { type: ["string", "null"] },
            features: { type: "array", items: feature },
          },
        },
        datapath: {
          type: "object",
          required: ["name", "selected", "continueGuard"],
          additionalProperties: false,
          properties: {
            name: { type: "string", enum: ["seccomp", "bpf"] },
            selected: { type: "string" },
            continueGuard: {
              type: "object",
              required: ["available", "reason"],
              additionalProperties: false,
              properties: { available: { type: "boolean" }, reason: { type: "string" } },
            },
          },
        },
      },
    },
  },
} as const;

export function registerInfoRoute(
  app: FastifyInstance,
  ctx: {
    readonly version: string;
    readonly node: string;
    readonly kernel: KernelInfo;
    readonly datapath: DatapathInfo;
  },
): void {
  app.get("/v1/info", { schema: INFO_SCHEMA }, async (): Promise<InfoResponse> => {
    return { version: ctx.version, node: ctx.node, kernel: ctx.kernel, datapath: ctx.datapath };
  });
}
