// What the bundle gets for `import … from "undici"` (scripts/bundle.mjs): the part of undici lazypull
// uses — Agent, buildConnector, request and the Dispatcher API (`dispatcher.request`) — without
// undici's index.js, which also loads fetch, WebSocket, EventSource, the cache stores, cookies and the
// mocks, and whose cookie code reads globalThis.Headers, which loads node's own copy of undici as well
// (together ~90 ms of a start). Resolved inside undici's package directory; the request wrapper is
// index.js's makeDispatcher. Tests and dist/*.js keep the whole undici.
import Dispatcher from "./lib/dispatcher/dispatcher.js";
import Agent from "./lib/dispatcher/agent.js";
import api from "./lib/api/index.js";
import buildConnector from "./lib/core/connect.js";
import errors from "./lib/core/errors.js";
import util from "./lib/core/util.js";
import globalDispatcher from "./lib/global.js";

Object.assign(Dispatcher.prototype, api);

const { getGlobalDispatcher, setGlobalDispatcher } = globalDispatcher;

function makeDispatcher(fn) {
  return (url, opts, handler) => {
    if (typeof opts === "function") {
      handler = opts;
      opts = null;
    }
    if (!url || (typeof url !== "string" && typeof url !== "object" && !(url instanceof URL))) throw new errors.InvalidArgumentError("invalid url");
    if (opts != null && typeof opts !== "object") throw new errors.InvalidArgumentError("invalid opts");
    if (opts && opts.path != null) {
      if (typeof opts.path !== "string") throw new errors.InvalidArgumentError("invalid opts.path");
      const path = opts.path.startsWith("/") ? opts.path : `/${opts.path}`;
      url = new URL(util.parseOrigin(url).origin + path);
    } else {
      if (!opts) opts = typeof url === "object" ? url : {};
      url = util.parseURL(url);
    }
    const { agent, dispatcher = getGlobalDispatcher() } = opts;
    if (agent) throw new errors.InvalidArgumentError("unsupported opts.agent. Did you mean opts.client?");
    return fn.call(
      dispatcher,
      { ...opts, origin: url.origin, path: url.search ? `${url.pathname}${url.search}` : url.pathname, method: opts.method || (opts.body ? "PUT" : "GET") },
      handler,
    );
  };
}

const request = makeDispatcher(api.request);
export { Agent, Dispatcher, buildConnector, errors, getGlobalDispatcher, request, setGlobalDispatcher };
