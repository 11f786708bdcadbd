// A real OpenID provider for coffer's tests: oauth2-mock-server on 127.0.0.1 (a free port),
// serving discovery, the JWKS, tokens, and the authorization code flow (its authorize
// endpoint approves at once, PKCE checked at the token endpoint). Driven over stdin/stdout,
// one JSON object per line:
//   -> {"issuer": "http://127.0.0.1:PORT"}                     (once, when listening)
//   <- {"cmd": "token", "claims": {...}, "expiresIn": 300, "kid": "…"?}  -> {"token": "…"}
//   <- {"cmd": "rotate"}                                         -> {"kid": "<new key id>"}
//   <- {"cmd": "login-as", "claims": {...}}                      -> {"ok": true}
//        the next sign-in through the authorization code flow gets these claims in its ID
//        token (and access token), e.g. {"preferred_username": "alice", "groups": [...]};
//        they are used by the one token request that succeeds, then forgotten
//   <- {"cmd": "sign-ins"}                                       -> {"count": N}
//        how many codes the token endpoint has exchanged so far
// claims are merged into the token's payload (iss, iat, exp and nbf are set by the server).
import { OAuth2Server } from 'oauth2-mock-server';
import readline from 'node:readline';

const server = new OAuth2Server();
const first = await server.issuer.keys.generate('RS256');
await server.start(0, '127.0.0.1');
const port = server.address().port;
server.issuer.url = `http://127.0.0.1:${port}`;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// The claims of the next authorization-code sign-in.
let loginAs = null;
let signIns = 0;
const isCodeExchange = (req) => req?.body?.grant_type === 'authorization_code';
server.service.on('beforeTokenSigning', (token, req) => {
  if (loginAs && isCodeExchange(req)) Object.assign(token.payload, loginAs);
});
server.service.on('beforeResponse', (response, req) => {
  if (isCodeExchange(req) && response.statusCode === 200) {
    loginAs = null;
    signIns += 1;
  }
});

out({ issuer: server.issuer.url, kid: first.kid });

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  try {
    const req = JSON.parse(line);
    if (req.cmd === 'token') {
      const token = await server.issuer.buildToken({
        kid: req.kid ?? undefined,
        expiresIn: req.expiresIn ?? 300,
        scopesOrTransform: (_header, payload) => Object.assign(payload, req.claims ?? {}),
      });
      out({ token });
    } else if (req.cmd === 'rotate') {
      const key = await server.issuer.keys.generate('RS256');
      out({ kid: key.kid });
    } else if (req.cmd === 'login-as') {
      loginAs = { ...(req.claims ?? {}) };
      out({ ok: true });
    } else if (req.cmd === 'sign-ins') {
      out({ count: signIns });
    } else {
      out({ error: `unknown command ${req.cmd}` });
    }
  } catch (e) {
    out({ error: String(e) });
  }
}
await server.stop();
