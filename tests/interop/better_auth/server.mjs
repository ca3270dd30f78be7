#!/usr/bin/env node
// A real Better-auth HTTP server (the TypeScript service) for tests that talk
// to it over HTTP, as a browser and a Python service beside it would.
//
// Usage (DATABASE_URL must be set):
//
//   node server.mjs --fd N [--base-url URL] [--cookie-prefix PREFIX] [--bearer | --bearer-signed]
//
//   --fd N             serve on the listening socket inherited as file descriptor N
//                      (the test binds it on loopback, so no port can be raced for)
//   --base-url URL     Better-auth's baseURL (default http://localhost:3000); an
//                      https URL makes its cookies __Secure- prefixed
//   --cookie-prefix P  advanced.cookiePrefix
//   --bearer           the bearer plugin, as configured by default (it also
//                      accepts an unsigned token)
//   --bearer-signed    the bearer plugin with requireSignature: true
//
// The secret is NOT set here: Better-auth reads BETTER_AUTH_SECRET,
// BETTER_AUTH_SECRETS and AUTH_SECRET from the environment itself, which is
// what the tests check orgschema against. Routes: Better-auth's own, under
// /api/auth (sign-up/email, sign-in/email, get-session, sign-out, delete-user...).
// Stops when stdin closes, so it never outlives the test process.

import http from "node:http";
import { parseArgs } from "node:util";
import { betterAuth } from "better-auth";
import { toNodeHandler } from "better-auth/node";
import { bearer } from "better-auth/plugins";
import pg from "pg";

const { values: opts } = parseArgs({
  options: {
    fd: { type: "string" },
    "base-url": { type: "string", default: "http://localhost:3000" },
    "cookie-prefix": { type: "string" },
    bearer: { type: "boolean", default: false },
    "bearer-signed": { type: "boolean", default: false },
  },
});

if (!process.env.DATABASE_URL || opts.fd === undefined) {
  process.stderr.write("usage: DATABASE_URL=... node server.mjs --fd N [options]\n");
  process.exit(2);
}

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
const plugins = [];
if (opts.bearer) plugins.push(bearer());
if (opts["bearer-signed"]) plugins.push(bearer({ requireSignature: true }));

const auth = betterAuth({
  database: pool,
  baseURL: opts["base-url"],
  emailAndPassword: { enabled: true },
  user: { deleteUser: { enabled: true } },
  advanced: {
    database: { validateSchema: true },
    ...(opts["cookie-prefix"] ? { cookiePrefix: opts["cookie-prefix"] } : {}),
  },
  plugins,
  // Many sign-ins from one address in a few seconds are the point of the tests.
  rateLimit: { enabled: false },
  telemetry: { enabled: false },
  logger: {
    level: "warn",
    log: (level, message) => process.stderr.write(`[better-auth ${level}] ${message}\n`),
  },
});

const server = http.createServer(toNodeHandler(auth));
server.listen({ fd: Number(opts.fd) });

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  server.closeAllConnections();
  server.close(() => pool.end().finally(() => process.exit(0)));
};
process.stdin.on("end", stop);
process.stdin.on("close", stop);
process.stdin.resume();
process.on("SIGTERM", stop);
