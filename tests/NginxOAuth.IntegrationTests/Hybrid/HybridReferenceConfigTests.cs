using System;
using System.IO;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Hybrid;

/// <summary>
/// nginx-conf/jwt-or-opaque.conf runs as written, with only the listen
/// line, the IdP addresses (discovery on one fake server, introspection on
/// the FakeIdp), the secret and log paths and the backend substituted.
/// </summary>
[TestFixture]
public sealed class HybridReferenceConfigTests : HybridFixture
{
    private static readonly SigningKey Key = AlgVariant.Get("ES256").Key(5);

    private string Issuer => KeyServer.BaseUrl + "/realms/demo";

    protected override void StartGateway(NginxInstance nginx)
    {
        KeyServer.Set("/realms/demo/.well-known/openid-configuration", FakeResponse.Json(
            new JsonObject { ["issuer"] = Issuer, ["jwks_uri"] = Issuer + "/certs" }.ToJsonString()));
        KeyServer.Set("/realms/demo/certs", FakeResponse.Json(TokenFactory.Jwks(Key)));

        string secret = nginx.WriteFile("client_secret", "example-secret\n");
        string text = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "jwt-or-opaque.conf"));
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int open = Array.FindIndex(lines, l => l.TrimEnd() == "http {");
        int close = Array.FindLastIndex(lines, l => l.TrimEnd() == "}");
        string http = string.Join('\n', lines[(open + 1)..close])
            .Replace("listen 8080;", $"listen 127.0.0.1:{nginx.Port};", StringComparison.Ordinal)
            .Replace("https://idp.example.com/oauth2/introspect", Idp.BaseUrl + "/introspect", StringComparison.Ordinal)
            .Replace("https://idp.example.com", KeyServer.BaseUrl, StringComparison.Ordinal)
            .Replace("/etc/nginx/secrets/client_secret", secret, StringComparison.Ordinal)
            .Replace("/var/log/nginx/auth.log", Path.Combine(nginx.Directory, "auth.log"), StringComparison.Ordinal)
            .Replace("proxy_pass http://127.0.0.1:9000;",
                "proxy_set_header X-Echo \"$oauth_token_path|$jwt_claim_sub$oauth2_token_sub\"; "
                + $"proxy_pass http://127.0.0.1:{nginx.EchoPort}/echo;", StringComparison.Ordinal);
        nginx.Start(http);
    }

    private string Jwt(string sub) =>
        TokenFactory.Sign(Key, TokenFactory.Claims(sub, new JsonObject { ["iss"] = Issuer }));

    [Test]
    public async Task Api_location_verifies_a_JWT_of_the_realm_locally_and_introspects_an_opaque_token()
    {
        string jwt = Jwt("ref-api");

        HttpReply local = await Nginx.GetAsync("/api/items", jwt);
        HttpReply introspected = await Nginx.GetAsync("/api/items", "ref-opaque");
        HttpReply forged = await Nginx.GetAsync("/api/items", TokenFactory.Tampered(jwt));

        Assert.That(local.Status, Is.EqualTo(200), local.ToString());
        Assert.That(local.Body, Is.EqualTo("jwt|ref-api"));
        Assert.That(Introspections(jwt), Is.Zero);
        Assert.That(introspected.Status, Is.EqualTo(200), introspected.ToString());
        Assert.That(introspected.Body, Is.EqualTo("introspection|user-ref-opaque"));
        Assert.That(forged.Status, Is.EqualTo(401), forged.ToString());
        Assert.That(Introspections(TokenFactory.Tampered(jwt)), Is.Zero);
    }

    [Test]
    public async Task Admin_location_introspects_a_verified_JWT_too()
    {
        string jwt = Jwt("ref-admin");
        string revoked = Jwt("ref-admin-revoked");
        Idp.Revoke(revoked);

        HttpReply ok = await Nginx.GetAsync("/admin/x", jwt);
        HttpReply refused = await Nginx.GetAsync("/admin/x", revoked);

        Assert.That(ok.Status, Is.EqualTo(200), ok.ToString());
        Assert.That(ok.Body, Is.EqualTo($"jwt+introspection|ref-adminuser-{jwt}"));
        Assert.That(refused.Status, Is.EqualTo(401), refused.ToString());
        Assert.That(Introspections(revoked), Is.EqualTo(1));
    }

    [Test]
    public async Task Partners_location_verifies_its_providers_JWT_locally_and_introspects_another_issuers()
    {
        string jwt = Jwt("ref-partner");
        string other = TokenFactory.Sign(AlgVariant.Get("ES256").Key(6),
            TokenFactory.Claims("ref-other", new JsonObject { ["iss"] = "https://other.example" }));
        string claimsProvider = TokenFactory.Sign(AlgVariant.Get("ES256").Key(6),
            TokenFactory.Claims("ref-claims", new JsonObject { ["iss"] = Issuer }));

        HttpReply local = await Nginx.GetAsync("/partners/x", jwt);
        HttpReply introspected = await Nginx.GetAsync("/partners/x", other);
        HttpReply forged = await Nginx.GetAsync("/partners/x", claimsProvider);

        Assert.That(local.Status, Is.EqualTo(200), local.ToString());
        Assert.That(local.Body, Is.EqualTo("jwt|ref-partner"));
        Assert.That(Introspections(jwt), Is.Zero);
        Assert.That(introspected.Status, Is.EqualTo(200), introspected.ToString());
        Assert.That(introspected.Body, Is.EqualTo($"introspection|user-{other}"));
        Assert.That(forged.Status, Is.EqualTo(401), forged.ToString());
        Assert.That(Introspections(claimsProvider), Is.Zero);
    }
}
