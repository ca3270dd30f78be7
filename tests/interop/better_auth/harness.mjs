#!/usr/bin/env node
// Interop harness: runs a REAL Better-auth server object against a PostgreSQL
// database whose schema was created by orgschema, and checks that Better-auth
// can work on it.
//
// Usage (DATABASE_URL must be set; TCP and Unix-socket URIs both work, e.g.
// postgresql://postgres:@/dbname?host=/var/run/postgresql):
//
//   node harness.mjs [flow [email]]             full email/password round trip
//   node harness.mjs sign-in <email> <password>  sign in a user created elsewhere
//   node harness.mjs sign-up <email> <password> <name>
//   node harness.mjs check-schema                 only the schema checks
//
// stdout carries only JSON lines (one per step plus a summary); everything
// human-oriented, including Better-auth's own log lines, goes to stderr.
//
// Exit codes:
//   0  success
//   1  refused (sign-in/sign-up) or a flow/check-schema assertion failed
//   2  usage error (bad arguments, DATABASE_URL missing)
//   3  Better-auth's schema check rejected the database
//   4  anything else (database unreachable, unexpected response, bug)

import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import pg from "pg";

const BASE_URL = "http://localhost:3000";
const API = `${BASE_URL}/api/auth`;
// Fixed, test-only secret (>= 32 chars, high entropy so Better-auth does not warn).
const TEST_SECRET = "orgschema-interop-TEST-ONLY-secret-4f9c2a7e1b8d3065";
// Sent as X-Forwarded-For so the session's "ipAddress" column gets exercised.
const CLIENT_IP = "203.0.113.7"; // TEST-NET-3, never a real client
const USER_AGENT = "orgschema-better-auth-interop-harness";
// What @better-auth/utils/password (scrypt) stores in account.password:
// 16 random bytes as 32 hex chars, ":", 64-byte derived key as 128 hex chars.
const SCRYPT_HASH_RE = /^[0-9a-f]{32}:[0-9a-f]{128}$/;

const EXIT = { OK: 0, REFUSED: 1, USAGE: 2, SCHEMA: 3, ERROR: 4 };

class HarnessFailure extends Error {
  constructor(message, exitCode = EXIT.REFUSED, details = {}) {
    super(message);
    this.exitCode = exitCode;
    this.details = details; // extra fields for the JSON summary line
  }
}

// ---------------------------------------------------------------- output

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const note = (msg) => process.stderr.write(`[harness] ${msg}\n`);

// One-line description of an error for the JSON output. Better-auth's
// SchemaMismatchError message is multi-line, so list its findings instead.
function describe(error) {
  if (isSchemaMismatch(error)) {
    const what = error.findings.map((f) => `${f.kind} ${f.table}${f.column ? `.${f.column}` : ""}`);
    return `Better-auth schema check failed: ${what.join("; ")}`;
  }
  return String(error?.message ?? error).split("\n")[0];
}

function assert(condition, message) {
  if (!condition) throw new HarnessFailure(message);
}

// ---------------------------------------------------------------- auth

// Better-auth log lines are routed to stderr (stdout is reserved for JSON) and
// kept, so check-schema can report the type/nullability warnings that
// getMigrations() only ever logs.
const betterAuthLogs = [];

function makeAuth(pool) {
  return betterAuth({
    // A pg Pool: Better-auth wraps it in its built-in Kysely adapter
    // (PostgresDialect), exactly like a typical TypeScript service does.
    database: pool,
    emailAndPassword: { enabled: true },
    secret: TEST_SECRET,
    baseURL: BASE_URL,
    advanced: {
      database: {
        // The runtime schema check (@better-auth/core dist/db/schema-check.mjs,
        // checksSchema()). It is on unless set to false, and it is a plain
        // boolean: there are no strictness levels. We set it explicitly so a
        // future default change cannot silently turn it off here.
        validateSchema: true,
      },
    },
    // The default in-memory rate limiter is only on when NODE_ENV=production;
    // pin it off so a repeated sign-in in the flow is never throttled. It
    // does not touch the database unless storage: "database" is configured.
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    logger: {
      level: "warn",
      log: (level, message, ...args) => {
        betterAuthLogs.push({ level, message: String(message) });
        const extra = args.length ? ` ${args.map(String).join(" ")}` : "";
        process.stderr.write(`[better-auth ${level}] ${message}${extra}\n`);
      },
    },
  });
}

// Runs Better-auth's own schema check for this auth instance. Returns null
// when clean, else the SchemaMismatchError (.findings, formatted .message).
// Uses ctx.explicitSchemaCheck: the same check object request paths await
// (ctx.checkSchema), but present even when runtime validation is disabled.
async function runSchemaCheck(auth) {
  const ctx = await auth.$context;
  const check = ctx.explicitSchemaCheck;
  if (typeof check !== "function") {
    throw new HarnessFailure(
      `Better-auth registered no schema check for adapter "${ctx.adapter?.id}"`,
      EXIT.ERROR,
    );
  }
  try {
    await check();
    return null;
  } catch (error) {
    if (isSchemaMismatch(error)) return error;
    throw error;
  }
}

// SchemaMismatchError lives in @better-auth/core's internal module; match on
// its stable `code` instead of importing a transitive dependency.
function isSchemaMismatch(error) {
  return error?.code === "SCHEMA_MISMATCH" && Array.isArray(error.findings);
}

// ---------------------------------------------------------------- HTTP client

// Drives auth.handler with real Request objects, like a browser on the same
// origin: JSON bodies, an Origin header (Better-auth's CSRF/origin check
// looks at it) and a cookie jar fed from Set-Cookie.
class Client {
  constructor(auth) {
    this.auth = auth;
    this.cookies = new Map();
  }

  async request(method, path, body) {
    const headers = new Headers({
      origin: BASE_URL,
      "user-agent": USER_AGENT,
      "x-forwarded-for": CLIENT_IP,
    });
    if (this.cookies.size) {
      headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    }
    let payload;
    if (body !== undefined) {
      headers.set("content-type", "application/json");
      payload = JSON.stringify(body);
    }
    const response = await this.auth.handler(
      new Request(`${API}${path}`, { method, headers, body: payload }),
    );
    for (const line of response.headers.getSetCookie()) this.#storeCookie(line);
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = { unparsed: text };
    }
    return { status: response.status, json };
  }

  #storeCookie(line) {
    const [pair, ...attrs] = line.split(";");
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq).trim();
    const value = pair.slice(eq + 1).trim();
    const expired = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
    if (expired || value === "") this.cookies.delete(name);
    else this.cookies.set(name, value);
  }

  sessionCookie() {
    for (const [name, value] of this.cookies) {
      if (name.endsWith("session_token")) return value;
    }
    return undefined;
  }
}

// An unexpected status from the handler. (A failed schema check does not
// land here: auth.handler rethrows the SchemaMismatchError itself.)
function unexpected(label, res) {
  return new HarnessFailure(`${label}: unexpected HTTP ${res.status}: ${JSON.stringify(res.json)}`,
    EXIT.ERROR, { status: res.status });
}

// ---------------------------------------------------------------- DB probes

async function dbUser(pool, id) {
  const { rows } = await pool.query(
    `SELECT "id", "name", "email", "emailVerified" FROM "user" WHERE "id" = $1`, [id]);
  return rows[0];
}

async function dbCredentialAccount(pool, userId) {
  const { rows } = await pool.query(
    `SELECT "accountId", "providerId", "password" FROM "account"
      WHERE "userId" = $1 AND "providerId" = 'credential'`, [userId]);
  return rows;
}

async function dbSession(pool, token) {
  const { rows } = await pool.query(
    `SELECT "userId", "ipAddress", "userAgent", "expiresAt" FROM "session" WHERE "token" = $1`,
    [token]);
  return rows[0];
}

// ---------------------------------------------------------------- modes
//
// Each mode returns the data for its summary line, printed at the bottom of
// this file; failures are thrown and reported there too.

// Runs one flow step: prints {"step", "ok": true, ...data} on success, or
// {"step", "ok": false, "error"} and rethrows (tagged with the step) on failure.
async function runStep(name, body) {
  try {
    const data = await body();
    emit({ step: name, ok: true, ...data });
    return data;
  } catch (error) {
    emit({ step: name, ok: false, error: describe(error) });
    error.failedStep ??= name;
    throw error;
  }
}

async function flow(auth, pool, emailArg) {
  const started = Date.now();
  // Mixed case on purpose: the stored email must come out lowercased, which
  // orgschema's CHECK (email = lower(email)) also demands. The random tag
  // keeps repeated runs against one database independent.
  const email = emailArg ?? `Ada.Lovelace+${Math.random().toString(36).slice(2, 10)}@Example.com`;
  const password = "correct horse battery staple";
  const name = "Ada Lovelace";
  const ctx = await auth.$context;
  const client = new Client(auth);
  let user;
  let token1;
  let token2;
  let steps = 0;
  const step = (stepName, body) => {
    steps++;
    return runStep(stepName, body);
  };

  // Runtime validation must be wired up before anything is sent.
  await step("schema-check-armed", async () => {
    assert(typeof ctx.checkSchema === "function",
      "Better-auth runtime schema validation is not active (ctx.checkSchema missing)");
    return { validateSchema: ctx.options.advanced?.database?.validateSchema };
  });

  // Sign up. This is the first request on this auth instance, so the handler
  // first awaits the schema check, which introspects the database now.
  await step("sign-up", async () => {
    const res = await new Client(auth).request("POST", "/sign-up/email", { name, email, password });
    if (res.status !== 200) throw unexpected("sign-up", res);
    user = res.json?.user;
    assert(user?.id, `no user in response: ${JSON.stringify(res.json)}`);
    assert(user.email === email.toLowerCase(), `expected email ${email.toLowerCase()}, got ${user.email}`);
    const stored = await dbUser(pool, user.id);
    assert(stored, `user ${user.id} not in "user" table`);
    assert(stored.email === email.toLowerCase(), `stored email is ${JSON.stringify(stored.email)}`);
    assert(stored.emailVerified === false, `stored emailVerified is ${JSON.stringify(stored.emailVerified)} (want boolean false)`);
    const accounts = await dbCredentialAccount(pool, user.id);
    assert(accounts.length === 1, `expected 1 credential account, found ${accounts.length}`);
    // Sign-in only accepts a credential account whose accountId is the user id.
    assert(accounts[0].accountId === user.id, `account.accountId ${accounts[0].accountId} != user id`);
    assert(SCRYPT_HASH_RE.test(accounts[0].password ?? ""),
      `account.password is not salt:key hex: ${accounts[0].password}`);
    return { userId: user.id, email: stored.email };
  });

  // The check ran on the request path and passed: a check holding a clean
  // verdict returns undefined; one that has not run (or was invalidated)
  // returns a pending promise; a failed one returns a rejected promise.
  await step("schema-check-passed", async () => {
    assert(ctx.checkSchema() === undefined,
      "no cached clean verdict after the first request; the schema check did not run");
    return { findings: [] };
  });

  // A wrong password is refused (guards against a verifier that accepts anything).
  await step("sign-in-wrong-password", async () => {
    const res = await new Client(auth).request("POST", "/sign-in/email", { email, password: `${password}!` });
    assert(res.status === 401, `expected 401, got ${res.status} ${JSON.stringify(res.json)}`);
    return { status: res.status, code: res.json?.code };
  });

  // Sign in with a fresh cookie jar, using the email exactly as typed at sign-up.
  await step("sign-in", async () => {
    const res = await client.request("POST", "/sign-in/email", { email, password });
    if (res.status !== 200) throw unexpected("sign-in", res);
    assert(res.json?.user?.id === user.id, `got user ${res.json?.user?.id}, want ${user.id}`);
    token1 = res.json.token;
    assert(token1, "no session token in response");
    assert(client.sessionCookie(), "no session cookie set");
    const session = await dbSession(pool, token1);
    assert(session?.userId === user.id, `no "session" row for the returned token`);
    assert(session.ipAddress === CLIENT_IP, `session.ipAddress is ${JSON.stringify(session.ipAddress)}`);
    assert(session.userAgent === USER_AGENT, `session.userAgent is ${JSON.stringify(session.userAgent)}`);
    return { userId: user.id };
  });

  // The session cookie resolves to the user.
  await step("get-session", async () => {
    const res = await client.request("GET", "/get-session");
    if (res.status !== 200) throw unexpected("get-session", res);
    assert(res.json?.user?.id === user.id, `expected user ${user.id}, got ${JSON.stringify(res.json)}`);
    assert(res.json.session?.token === token1, "session token differs from sign-in's");
    return { userId: res.json.user.id, email: res.json.user.email };
  });

  // Sign out: the session row is deleted and the old cookie no longer works.
  await step("sign-out", async () => {
    const staleCookies = new Map(client.cookies);
    const res = await client.request("POST", "/sign-out", {});
    if (res.status !== 200) throw unexpected("sign-out", res);
    assert(res.json?.success === true, `unexpected body ${JSON.stringify(res.json)}`);
    assert(!client.sessionCookie(), "session cookie was not cleared");
    assert(!(await dbSession(pool, token1)), "session row still present");
    const replay = new Client(auth);
    replay.cookies = staleCookies; // a client that ignores the cleared cookie
    const after = await replay.request("GET", "/get-session");
    assert(after.status === 200 && after.json === null,
      `old cookie still yields a session: ${after.status} ${JSON.stringify(after.json)}`);
    return {};
  });

  // Sign in again: a new session.
  await step("sign-in-again", async () => {
    const res = await client.request("POST", "/sign-in/email", { email, password });
    if (res.status !== 200) throw unexpected("sign-in-again", res);
    token2 = res.json?.token;
    assert(res.json?.user?.id === user.id, "wrong user");
    assert(token2 && token2 !== token1, "session token not renewed");
    assert((await dbSession(pool, token2))?.userId === user.id, "no session row");
    return { userId: user.id };
  });

  // And the new session resolves to the user.
  await step("get-session-again", async () => {
    const res = await client.request("GET", "/get-session");
    if (res.status !== 200) throw unexpected("get-session-again", res);
    assert(res.json?.user?.id === user.id && res.json.session?.token === token2,
      `unexpected session ${JSON.stringify(res.json)}`);
    return { userId: user.id };
  });

  return { steps, userId: user.id, email: user.email, ms: Date.now() - started };
}

async function signIn(auth, email, password) {
  const client = new Client(auth);
  const res = await client.request("POST", "/sign-in/email", { email, password });
  if (res.status === 401 || res.status === 403) {
    throw new HarnessFailure(`sign-in refused: HTTP ${res.status} ${res.json?.code ?? ""}`.trim(),
      EXIT.REFUSED, { status: res.status, code: res.json?.code ?? null });
  }
  if (res.status !== 200) throw unexpected("sign-in", res);
  // Prove the issued cookie is usable, not just that the password verified.
  const got = await client.request("GET", "/get-session");
  assert(got.json?.user?.id === res.json.user.id, "sign-in: session cookie does not resolve to the user");
  return { userId: res.json.user.id, email: res.json.user.email };
}

async function signUp(auth, email, password, name) {
  const res = await new Client(auth).request("POST", "/sign-up/email", { email, password, name });
  // 400: invalid input (bad email, short password); 422: user already exists.
  if (res.status === 400 || res.status === 422) {
    throw new HarnessFailure(`sign-up refused: HTTP ${res.status} ${res.json?.code ?? ""}`.trim(),
      EXIT.REFUSED, { status: res.status, code: res.json?.code ?? null });
  }
  if (res.status !== 200) throw unexpected("sign-up", res);
  return { userId: res.json.user.id, email: res.json.user.email };
}

// Two views of the schema:
//  - "runtime-schema-check": the check every request awaits. It only looks
//    for missing tables/columns that Better-auth writes, and for NOT NULL
//    columns without a default that Better-auth never writes.
//  - "migration-plan": what `npx auth migrate` would do (getMigrations from
//    better-auth/db/migration), read-only. Stricter: it also logs warnings
//    for column type mismatches and for nullable columns Better-auth
//    declares required. Indexes are compared only for plugin-declared
//    table-level indexes (the core tables have none).
// Both must come out empty for success.
async function checkSchema(auth) {
  const mismatch = await runSchemaCheck(auth);
  const findings = mismatch?.findings ?? [];
  emit({ step: "runtime-schema-check", ok: !mismatch, findings });

  const logsBefore = betterAuthLogs.length;
  const plan = await getMigrations(auth.options, { throwOnUnsafe: false });
  const warnings = betterAuthLogs.slice(logsBefore)
    .filter((l) => l.level === "warn" || l.level === "error").map((l) => l.message);
  const planned = {
    createTables: plan.toBeCreated.map((t) => t.table),
    addColumns: plan.toBeAdded.flatMap((t) => Object.keys(t.fields).map((f) => `${t.table}.${f}`)),
    addIndexes: plan.toBeAddedIndexes.map((i) => i.name),
    schemaProblems: plan.schemaProblems,
    unsafeChanges: plan.unsafeChanges,
    warnings,
  };
  const planOk = Object.values(planned).every((v) => v.length === 0);
  emit({ step: "migration-plan", ok: planOk, ...planned });

  if (mismatch) throw mismatch; // reported by main() with exit code 3
  if (!planOk) throw new HarnessFailure(`Better-auth's migration plan is not empty: ${JSON.stringify(planned)}`);
  return {};
}

// ---------------------------------------------------------------- main

const USAGE = `usage: node harness.mjs [flow [email] | sign-in <email> <password> |
                          sign-up <email> <password> <name> | check-schema]`;
const ARITY = { flow: [0, 1], "sign-in": [2, 2], "sign-up": [3, 3], "check-schema": [0, 0] };

async function run(mode, args) {
  const arity = ARITY[mode];
  if (!arity || args.length < arity[0] || args.length > arity[1]) {
    throw new HarnessFailure(USAGE, EXIT.USAGE);
  }
  const connectionString = process.env.DATABASE_URL;
  if (!connectionString) throw new HarnessFailure("DATABASE_URL is not set", EXIT.USAGE);

  // pg parses socket URIs itself: postgresql://user:@/db?host=/var/run/postgresql
  // (a host starting with "/" is a socket directory).
  const pool = new pg.Pool({ connectionString, max: 4 });
  try {
    const auth = makeAuth(pool);
    if (mode === "flow") return await flow(auth, pool, args[0]);
    if (mode === "sign-in") return await signIn(auth, ...args);
    if (mode === "sign-up") return await signUp(auth, ...args);
    return await checkSchema(auth);
  } finally {
    await pool.end();
  }
}

// The last stdout line is always {"summary": <mode>, "ok": <bool>, ...}.
const [mode = "flow", ...args] = process.argv.slice(2);
let exitCode = EXIT.OK;
try {
  emit({ summary: mode, ok: true, ...(await run(mode, args)) });
} catch (error) {
  if (error instanceof HarnessFailure) {
    exitCode = error.exitCode;
  } else if (isSchemaMismatch(error)) {
    // Thrown straight out of auth.handler / auth.api.* by the runtime check.
    exitCode = EXIT.SCHEMA;
  } else {
    exitCode = EXIT.ERROR;
  }
  if (exitCode === EXIT.SCHEMA) {
    // error.message is Better-auth's own formatted report.
    note(`FAILED (exit 3): Better-auth's schema check rejected the database:\n${error.message}`);
  } else {
    note(`FAILED (exit ${exitCode}): ${exitCode === EXIT.ERROR ? error?.stack ?? error : error.message}`);
  }
  emit({
    summary: mode,
    ok: false,
    exitCode,
    ...(error.failedStep && { failedStep: error.failedStep }),
    ...(isSchemaMismatch(error) && { findings: error.findings }),
    ...error.details,
    error: describe(error),
  });
}
process.exitCode = exitCode;
