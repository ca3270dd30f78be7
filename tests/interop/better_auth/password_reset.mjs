#!/usr/bin/env node
// Password reset through a REAL Better-auth server object, against a database
// whose schema orgschema created: the account-takeover test of the studio
// (tests/security/test_takeover.py) uses it to make Better-auth write a live
// reset token into verification.identifier, as it does in production, and to
// prove that token works.
//
// Self-contained on purpose (harness.mjs runs its own main on import): the
// Better-auth options below are harness.mjs's, plus sendResetPassword.
//
// Usage (DATABASE_URL must be set):
//
//   node password_reset.mjs request-reset <email>               ask for a reset e-mail
//   node password_reset.mjs reset-password <token> <password>   use the e-mailed token
//   node password_reset.mjs sign-in <email> <password>
//
// stdout carries one JSON line: {"summary": <mode>, "ok": <bool>, ...}.
// request-reset reports the token Better-auth "e-mailed" as mailedToken.
// Exit codes: 0 success, 1 refused, 2 usage, 4 anything else.

import { betterAuth } from "better-auth";
import pg from "pg";

const BASE_URL = "http://localhost:3000";
const API = `${BASE_URL}/api/auth`;
const TEST_SECRET = "orgschema-interop-TEST-ONLY-secret-4f9c2a7e1b8d3065";
const EXIT = { OK: 0, REFUSED: 1, USAGE: 2, ERROR: 4 };

const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

// The "outbox": what Better-auth would have sent the user by e-mail.
const outbox = [];

function makeAuth(pool) {
  return betterAuth({
    database: pool,
    emailAndPassword: {
      enabled: true,
      sendResetPassword: async ({ user, token }) => {
        outbox.push({ email: user.email, token });
      },
    },
    secret: TEST_SECRET,
    baseURL: BASE_URL,
    advanced: { database: { validateSchema: true } },
    rateLimit: { enabled: false },
    telemetry: { enabled: false },
    logger: {
      level: "warn",
      log: (level, message) => process.stderr.write(`[better-auth ${level}] ${message}\n`),
    },
  });
}

async function post(auth, path, body) {
  const response = await auth.handler(
    new Request(`${API}${path}`, {
      method: "POST",
      headers: { origin: BASE_URL, "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
  );
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = { unparsed: text };
  }
  return { status: response.status, json };
}

async function run(mode, args) {
  const modes = {
    "request-reset": async ([email]) => {
      const res = await post(auth, "/request-password-reset", {
        email,
        redirectTo: `${BASE_URL}/reset`,
      });
      const mailed = outbox.find((item) => item.email === email.toLowerCase());
      return { ok: res.status === 200 && Boolean(mailed), status: res.status, mailedToken: mailed?.token };
    },
    "reset-password": async ([token, newPassword]) => {
      const res = await post(auth, "/reset-password", { token, newPassword });
      return { ok: res.status === 200, status: res.status, code: res.json?.code ?? null };
    },
    "sign-in": async ([email, password]) => {
      const res = await post(auth, "/sign-in/email", { email, password });
      return { ok: res.status === 200, status: res.status, userId: res.json?.user?.id ?? null };
    },
  };
  const arity = { "request-reset": 1, "reset-password": 2, "sign-in": 2 }[mode];
  if (!arity || args.length !== arity || !process.env.DATABASE_URL) {
    emit({ summary: mode, ok: false, error: "usage: see the top of password_reset.mjs" });
    return EXIT.USAGE;
  }
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  const auth = makeAuth(pool);
  try {
    const result = await modes[mode](args);
    emit({ summary: mode, ...result });
    return result.ok ? EXIT.OK : EXIT.REFUSED;
  } finally {
    await pool.end();
  }
}

const [mode, ...args] = process.argv.slice(2);
try {
  process.exitCode = await run(mode, args);
} catch (error) {
  emit({ summary: mode, ok: false, error: String(error?.message ?? error).split("\n")[0] });
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exitCode = EXIT.ERROR;
}
