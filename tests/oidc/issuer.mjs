// A real OpenID provider for coffer's tests: oauth2-mock-server on 127.0.0.1 (a free port),
// serving discovery, the JWKS and tokens. Driven over stdin/stdout, one JSON object per line:
//   -> {"issuer": "http://127.0.0.1:PORT"}                     (once, when listening)
//   <- {"cmd": "token", "claims": {...}, "expiresIn": 300, "kid": "…"?}  -> {"token": "…"}
//   <- {"cmd": "rotate"}                                         -> {"kid": "<new key id>"}
// claims are merged into the token's payload (iss, iat, exp and nbf are set by the server).
import { OAuth2Server } from 'oauth2-mock-server';
import readline from 'node:readline';

const server = new OAuth2Server();
const first = await server.issuer.keys.generate('RS256');
await server.start(0, '127.0.0.1');
const port = server.address().port;
server.issuer.url = `http://127.0.0.1:${port}`;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
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
    } else {
      out({ error: `unknown command ${req.cmd}` });
    }
  } catch (e) {
    out({ error: String(e) });
  }
}
await server.stop();
