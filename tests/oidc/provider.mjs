// A certified OpenID provider (panva/oidc-provider), configured strictly, for the OAuth tests:
// openid required, PKCE S256 required, resource indicators (RFC 8707) with JWT access tokens for this server,
// refresh tokens only for offline_access, login and consent through its own interaction pages.
//   node provider.mjs <port> <client_id> <client_secret> <redirect_uri> <resource>
import Provider, { errors } from "oidc-provider";

const [port, clientId, clientSecret, redirectUri, resource] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const scope = "openid profile email offline_access";

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { required: () => true },
  scopes: scope.split(" "),
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        return { scope, audience: resource, accessTokenFormat: "jwt", accessTokenTTL: 300, jwt: { sign: { alg: "RS256" } } };
      },
    },
  },
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, email: `${id}@example.com`, email_verified: true, name: id }),
  }),
  issueRefreshToken: (_ctx, client, code) => client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
  cookies: { keys: ["postgres-mcp-test"] },
});
provider.listen(Number(port), "127.0.0.1", () => console.log(`listening ${issuer}`));
