// The authorization server of `./build.sh demo`: oidc-provider on 127.0.0.1.
//   client_credentials with resource=https://api.demo.test  -> a JWT (RS256)
//   client_credentials without a resource                  -> an opaque token
//   RFC 7662 introspection and RFC 8693 exchange for the gateway's client;
//   an exchange with an audience issues a JWT for that audience.
// The signing key is made at each start; the gateway fetches it from /jwks.
// usage: node idp.mjs PORT
import { generateKeyPairSync } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const exchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token';
const apiResource = 'https://api.demo.test';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'demo-idp-1', use: 'sig', alg: 'RS256' };

// a resource server whose tokens are JWTs with that audience
const jwtResource = (audience, scope) => ({
  audience,
  scope,
  accessTokenFormat: 'jwt',
  accessTokenTTL: 600,
  jwt: { sign: { alg: 'RS256' } },
  identifier: () => audience,
});

const machine = {
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
};

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [
    // the API client whose tokens reach the gateway
    { ...machine, client_id: 'demo-app', client_secret: 'demo-app-secret',
      grant_types: ['client_credentials'], scope: 'api:read api:write' },
    // a client allowed to read only
    { ...machine, client_id: 'demo-reader', client_secret: 'demo-reader-secret',
      grant_types: ['client_credentials'], scope: 'api:read' },
    // the gateway: introspects and exchanges
    { ...machine, client_id: 'demo-gateway', client_secret: 'demo-gateway-secret',
      grant_types: ['client_credentials', exchangeGrant], scope: 'api:read api:write' },
  ],
  scopes: ['api:read', 'api:write'],
  extraTokenClaims: (ctx, token) => token.extra,
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== apiResource) {
          throw new errors.InvalidTarget();
        }
        return jwtResource(apiResource, 'api:read api:write');
      },
    },
  },
});

// RFC 8693 for the gateway: the subject token must be one of ours, the new
// token carries at most the requested scope (narrower), the requested
// audience, and act.sub = the gateway
provider.registerGrantType(exchangeGrant, async (ctx) => {
  const { params, client } = ctx.oidc;
  if (params.subject_token_type !== accessTokenType) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  const subject = await provider.ClientCredentials.find(params.subject_token);
  if (!subject || subject.isExpired) {
    throw new errors.InvalidGrant('subject_token is not active');
  }
  const had = new Set((subject.scope || '').split(' '));
  const scope = (params.scope || subject.scope || '').split(' ').filter((s) => had.has(s)).join(' ');
  if (params.scope && scope !== params.scope) {
    throw new errors.InvalidScope('the subject token does not carry the requested scope');
  }
  const token = new provider.ClientCredentials({
    client,
    scope,
    extra: { act: { sub: client.clientId }, sub: subject.clientId },
  });
  if (params.audience) {
    token.resourceServer = jwtResource(params.audience, scope);
  }
  ctx.body = {
    access_token: await token.save(),
    issued_token_type: accessTokenType,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}, ['subject_token', 'subject_token_type', 'audience', 'scope']);

provider.use(async (ctx, next) => {
  await next();
  console.log(`${new Date().toISOString()} ${ctx.method} ${ctx.path} ${ctx.status}`);
});

provider.listen(port, '127.0.0.1');
console.log(`listening ${issuer}`);
