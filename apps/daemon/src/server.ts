import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from "fastify";
import type { Logger } from "pino";
import { hasCode } from "@lazypull/errors";
import type { AcquireRequest, ApiError, CacheStatus, Health, LayerStatus } from "@lazypull/daemon-client";
import type { ImageStore } from "./images.js";
import { statusFor } from "./http-status.js";
import { METRICS_CONTENT_TYPE } from "./metrics.js";

export interface ServerDeps {
  store: ImageStore;
  /** `GET /v1/layers`: the store's layer status with the Additional Layer Store's use added */
  layers(): LayerStatus[];
  log: Logger;
  health(): Health;
  cache(): Promise<CacheStatus>;
  metrics(): string;
}

const acquireSchema = {
  type: "object",
  required: ["reference"],
  additionalProperties: false,
  properties: {
    reference: { type: "string", minLength: 1, maxLength: 1024 },
    platform: { type: "string", pattern: "^[a-z0-9_.-]+/[a-z0-9_.-]+(/[a-z0-9_.-]+)?$" },
    pid: { type: "integer", minimum: 1, maximum: 4194304 },
    predict: { type: "boolean" },
    early: { type: "boolean" },
    start: {
      type: "object",
      additionalProperties: false,
      properties: {
        entrypoint: { type: "array", maxItems: 256, items: { type: "string", maxLength: 4096 } },
        command: { type: "array", maxItems: 256, items: { type: "string", maxLength: 4096 } },
        env: { type: "array", maxItems: 1024, items: { type: "string", maxLength: 8192 } },
        workdir: { type: "string", maxLength: 4096 },
      },
    },
  },
} as const;

function body(err: unknown): ApiError {
  if (hasCode(err)) {
    const ctx = (err as { context?: unknown }).context;
    return { code: err.code, message: err.message, ...(ctx && typeof ctx === "object" && Object.keys(ctx).length ? { context: ctx as Record<string, unknown> } : {}) };
  }
  return { code: "DAEMON_INTERNAL", message: err instanceof Error ? err.message : String(err) };
}

/** The API routes on a Fastify instance (not yet listening). */
export function createServer(deps: ServerDeps): FastifyInstance {
  const log = deps.log;
  // pino's Logger is Fastify's logger; saying so keeps the instance's type the plain FastifyInstance
  const loggerInstance: FastifyBaseLogger = log;
  const app = Fastify({
    loggerInstance,
    // /v1/layers is polled by `lazypull status --watch`: log requests at debug (errors at warn) ourselves
    logController: new LogController({ disableRequestLogging: true }),
    // reject unknown keys and wrong types instead of quietly dropping or coercing them
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true } },
    forceCloseConnections: true,
    // errors Fastify answers before any route (a malformed URL, a path parameter over maxParamLength)
    // get the API's own shape too, not Fastify's {error, code: "FST_…"}
    frameworkErrors: (err, _req, reply) => {
      const status: 400 | 414 | 500 = err.code === "FST_ERR_MAX_PARAM_LENGTH" ? 414 : err.code === "FST_ERR_ASYNC_CONSTRAINT" ? 500 : 400;
      void (reply as FastifyReply).status(status).send({ code: status === 500 ? "DAEMON_INTERNAL" : "DAEMON_BAD_REQUEST", message: err.message } satisfies ApiError);
    },
  });

  app.addHook("onResponse", async (req, reply) => {
    const fields = { method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) };
    if (reply.statusCode >= 400) req.log.warn(fields, "request failed");
    else if (log.isLevelEnabled("debug")) req.log.debug(fields, "request");
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    // Fastify's own 4xx: schema validation, bad JSON, wrong content type, body too large
    if (err.validation || (typeof err.code === "string" && err.code.startsWith("FST_") && (err.statusCode ?? 500) < 500)) {
      const message = err.validation ? `invalid request: ${err.message}` : err.message;
      return reply.status(err.statusCode ?? 400).send({ code: "DAEMON_BAD_REQUEST", message } satisfies ApiError);
    }
    const status = statusFor(err);
    if (status >= 500) req.log.error({ err, url: req.url }, "request error");
    return reply.status(status).send(body(err));
  });

  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({ code: "DAEMON_NOT_FOUND", message: `no such endpoint: ${req.method} ${req.url.split("?")[0]}` } satisfies ApiError);
  });

  app.get("/healthz", async () => deps.health());

  app.get("/metrics", async (_req, reply) => reply.type(METRICS_CONTENT_TYPE).send(deps.metrics()));

  app.post<{ Body: AcquireRequest }>("/v1/images", { schema: { body: acquireSchema } }, async (req, reply) => {
    const lease = await deps.store.acquire(req.body);
    return reply.status(201).send(lease);
  });

  app.get("/v1/images", async () => deps.store.list());

  app.get<{ Params: { id: string } }>("/v1/images/:id", async (req) => deps.store.get(req.params.id));

  // an early lease's layers open after it is answered: this waits for them, or says why one could not be
  app.get<{ Params: { id: string } }>("/v1/images/:id/ready", async (req, reply) => {
    await deps.store.ready(req.params.id);
    return reply.status(204).send();
  });

  app.delete<{ Params: { id: string } }>("/v1/images/:id", async (req, reply) => {
    deps.store.release(req.params.id);
    return reply.status(204).send();
  });

  app.get("/v1/layers", async () => deps.layers());

  app.get("/v1/cache", async () => deps.cache());

  return app;
}
