// A tiny token issuer, so that signing in works offline: POST /api/auth/token
// {"name": "ada"} answers a JWT (RS256) that the HTTP API's JWT authorizer
// checks against keys/jwks.json. GET /api/me (behind the authorizer) shows
// the claims the gateway passed on.
//
// The key beside this file is a DEMO key, committed on purpose: anyone can
// sign tokens with it. On AWS the issuer is Cognito (or any OIDC provider)
// and the authorizer reads its JWKS URL.
import { createSign, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";

const KEY = readFileSync(new URL("./demo-private.pem", import.meta.url));
const KID = "portal-demo-1";

const b64url = (data) => Buffer.from(data).toString("base64url");

function sign(claims) {
  const head = b64url(JSON.stringify({ alg: "RS256", typ: "JWT", kid: KID }));
  const body = b64url(JSON.stringify(claims));
  const signer = createSign("RSA-SHA256");
  signer.update(`${head}.${body}`);
  return `${head}.${body}.${signer.sign(KEY).toString("base64url")}`;
}

const answer = (statusCode, body) => ({
  statusCode,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

export const handler = async (event) => {
  if (event.routeKey === "GET /me") {
    return answer(200, event.requestContext.authorizer.jwt);
  }
  let input;
  try {
    const raw = event.isBase64Encoded ? Buffer.from(event.body || "", "base64").toString() : event.body;
    input = JSON.parse(raw || "{}");
  } catch {
    return answer(400, { message: "the body is not JSON" });
  }
  const name = typeof input.name === "string" ? input.name.trim() : "";
  if (!/^[\p{L}\p{N} ._-]{1,40}$/u.test(name)) {
    return answer(400, { message: "name: 1 to 40 letters, digits, spaces, '.', '_' or '-'" });
  }
  const now = Math.floor(Date.now() / 1000);
  const token = sign({
    iss: process.env.ISSUER,
    aud: process.env.AUDIENCE,
    sub: `user-${name.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`,
    name,
    scope: "tickets/read tickets/write",
    iat: now,
    exp: now + 3600,
    jti: randomUUID(),
  });
  return answer(200, { token, expiresIn: 3600, name });
};
