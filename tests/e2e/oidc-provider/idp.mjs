// A real OAuth 2.0 authorization server for the end-to-end test:
// oidc-provider with client credentials, RFC 7662 introspection, RFC 7009
// revocation and an RFC 8693 token exchange grant registered on top.
// usage: node idp.mjs PORT   (listens on 127.0.0.1 only)
import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const exchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const accessTokenType = 'urn:ietf:params:oauth:token-type:access_token';

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
  ],
  scopes: ['api:read', 'api:write'],
  features: {
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    devInteractions: { enabled: false },
  },
});

provider.registerGrantType(exchangeGrant, async (ctx) => {
  const { params, client } = ctx.oidc;
  if (params.subject_token_type !== accessTokenType) {
    throw new errors.InvalidRequest('unsupported subject_token_type');
  }
  const subject = await provider.ClientCredentials.find(params.subject_token);
  if (!subject || subject.isExpired) {
    throw new errors.InvalidGrant('subject_token is not active');
  }
  const token = new provider.ClientCredentials({
    client,
    scope: params.scope || subject.scope,
    extra: { act: { sub: client.clientId }, sub: subject.clientId, aud: params.audience },
  });
  ctx.body = {
    access_token: await token.save(),
    issued_token_type: accessTokenType,
    token_type: 'Bearer',
    expires_in: token.expiration,
    scope: token.scope,
  };
}, ['subject_token', 'subject_token_type', 'audience', 'scope']);

provider.listen(port, '127.0.0.1');
console.log(`listening ${issuer}`);
