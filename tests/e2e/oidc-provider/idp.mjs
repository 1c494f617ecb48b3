// A real OAuth 2.0 authorization server for the end-to-end tests:
// oidc-provider with client credentials, RFC 7662 introspection, RFC 7009
// revocation, JWT access tokens for one resource (RFC 8707) and an RFC
// 8693 token exchange grant registered on top.
// Clients authenticate with client_secret_basic, client_secret_jwt or
// private_key_jwt (the public RSA JWK of the last comes from the
// IDP_CLIENT_JWK environment variable; without it that client is absent).
// The gateway clients of auth_oauth2_token's JWT methods (introspection and
// exchange, one method per client): gw-secret-jwt (client_secret_jwt, HS256)
// always, and one private_key_jwt client per entry of the IDP_KEY_CLIENTS
// environment variable, a JSON array of { client_id, alg, jwk } (jwk public).
// Every token endpoint request is printed as one line "REQUEST <json>".
// usage: node idp.mjs PORT   (listens on 127.0.0.1 only)
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const exchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token';
const jwtResource = 'https://api.nginx-oauth.test';
const clientJwk = process.env.IDP_CLIENT_JWK ? JSON.parse(process.env.IDP_CLIENT_JWK) : undefined;

// the clients of the STS exchange: same grants, other ways to authenticate
const exchangeClients = [
  {
    client_id: 'jwt-secret-client',
    client_secret: 'jwt-secret-client-secret-0123456789abcdef0123456789',
    grant_types: ['client_credentials', exchangeGrant],
    redirect_uris: [],
    response_types: [],
    scope: 'api:read api:write',
    token_endpoint_auth_method: 'client_secret_jwt',
    token_endpoint_auth_signing_alg: 'HS256',
  },
  ...(clientJwk ? [{
    client_id: 'jwt-key-client',
    grant_types: ['client_credentials', exchangeGrant],
    redirect_uris: [],
    response_types: [],
    scope: 'api:read api:write',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'RS256',
    jwks: { keys: [clientJwk] },
  }] : []),
];

// the gateway's clients for auth_oauth2_token_client_auth: introspect and exchange
const keyClients = process.env.IDP_KEY_CLIENTS ? JSON.parse(process.env.IDP_KEY_CLIENTS) : [];
const gatewayJwtClients = [
  {
    client_id: 'gw-secret-jwt',
    client_secret: 'gw-secret-jwt-secret-0123456789abcdef0123456789abcdef',
    grant_types: ['client_credentials', exchangeGrant],
    redirect_uris: [],
    response_types: [],
    scope: 'api:read api:write',
    token_endpoint_auth_method: 'client_secret_jwt',
    token_endpoint_auth_signing_alg: 'HS256',
  },
  ...keyClients.map(({ client_id, alg, jwk }) => ({
    client_id,
    grant_types: ['client_credentials', exchangeGrant],
    redirect_uris: [],
    response_types: [],
    scope: 'api:read api:write',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: alg,
    jwks: { keys: [jwk] },
  })),
];

const provider = new Provider(issuer, {
  clients: [
    {
      // the gateway: introspects and exchanges
      client_id: 'my-gateway',
      client_secret: 'gw-secret',
      grant_types: ['client_credentials', exchangeGrant],
      redirect_uris: [],
      response_types: [],
      scope: 'api:read api:write',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      // the API client whose tokens reach the gateway
      client_id: 'app',
      client_secret: 'app-secret',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      scope: 'api:read api:write',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    ...exchangeClients,
    ...gatewayJwtClients,
  ],
  scopes: ['api:read', 'api:write'],
  // keep the claims the exchange grant puts in `extra` (sub, act, aud): introspection shows them
  extraTokenClaims: (ctx, token) => token.extra,
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: false },
    // a token requested for this resource is a JWT access token signed
    // with the provider's keys (its jwks_uri): the auth_jwt_discovery test;
    // tokens without a resource stay opaque
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => {
        if (resource !== jwtResource) {
          throw new errors.InvalidTarget();
        }
        return { scope: 'api:read api:write', audience: resource, accessTokenFormat: 'jwt' };
      },
    },
  },
});

provider.registerGrantType(exchangeGrant, async (ctx) => {
  const { params, client } = ctx.oidc;
  if (params.subject_token_type !== accessTokenType) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  const subject = await provider.ClientCredentials.find(params.subject_token)
    ?? await provider.AccessToken.find(params.subject_token);
  if (!subject || subject.isExpired) {
    throw new errors.InvalidGrant('subject_token is not active');
  }
  const token = new provider.ClientCredentials({
    client,
    scope: params.scope || subject.scope,
    extra: { act: { sub: client.clientId }, sub: subject.accountId ?? subject.clientId },
  });
  if (params.audience) {
    token.setAudience(params.audience);
  }
  ctx.body = {
    access_token: await token.save(),
    issued_token_type: accessTokenType,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}, ['subject_token', 'subject_token_type', 'audience', 'scope']);

// one line per token endpoint request, for the tests to read
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/token' || ctx.path === '/token/introspection') {
    const params = ctx.oidc?.params ? Object.fromEntries(
      Object.entries(ctx.oidc.params).filter(([, v]) => v !== undefined)) : {};
    console.log('REQUEST ' + JSON.stringify({
      method: ctx.method,
      path: ctx.path,
      authorization: ctx.get('authorization') || null,
      contentType: ctx.get('content-type') || null,
      clientId: ctx.oidc?.client?.clientId ?? null,
      params,
      status: ctx.status,
      error: ctx.body?.error ?? null,
    }));
  }
});

provider.listen(port, '127.0.0.1');
console.log(`listening ${issuer}`);
