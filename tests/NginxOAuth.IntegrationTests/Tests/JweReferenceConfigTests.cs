using System;
using System.IO;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// nginx-conf/jwt-encrypted.conf runs as written, with only the listen line,
/// the key file paths and the backend substituted (the backend is the echo
/// server, told to answer with the variables the gateway forwards).
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class JweReferenceConfigTests : NginxFixture
{
    private static readonly SigningKey IdpKey = AlgVariant.Get("ES256").Key(8);
    private static readonly RSA GatewayKey = RSA.Create(2048);
    private static readonly byte[] PartnerKey = RandomNumberGenerator.GetBytes(32);

    protected override Task StartNginx(NginxInstance nginx)
    {
        string signing = nginx.WriteFile("idp-signing.jwks", TokenFactory.Jwks(IdpKey));
        string decryption = nginx.WriteFile("gateway-decryption.jwks",
            TokenFactory.Jwks(JweFactory.PrivateRsaJwk(GatewayKey, "gateway-2026")));
        string partner = nginx.WriteFile("partner-shared.jwks",
            TokenFactory.Jwks(JweFactory.OctJwk(PartnerKey, "partner-1")));
        string text = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "jwt-encrypted.conf"));
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int open = Array.FindIndex(lines, l => l.TrimEnd() == "http {");
        int close = Array.FindLastIndex(lines, l => l.TrimEnd() == "}");
        string http = string.Join('\n', lines[(open + 1)..close])
            .Replace("listen 443 ssl;", $"listen 127.0.0.1:{nginx.Port}; large_client_header_buffers 4 64k;",
                StringComparison.Ordinal)
            .Replace("/etc/nginx/keys/idp-signing.jwks", signing, StringComparison.Ordinal)
            .Replace("/etc/nginx/keys/gateway-decryption.jwks", decryption, StringComparison.Ordinal)
            .Replace("/etc/nginx/keys/partner-shared.jwks", partner, StringComparison.Ordinal)
            .Replace("proxy_pass http://backend;",
                "proxy_set_header X-Echo \"Bearer $jwt_payload|$jwt_tenant|$jwt_claim_sub\"; "
                + $"proxy_pass http://127.0.0.1:{nginx.EchoPort}/echo;", StringComparison.Ordinal);
        nginx.Start(http);
        return Task.CompletedTask;
    }

    [Test]
    public async Task Api_location_forwards_the_inner_JWS_of_a_nested_token()
    {
        JsonObject claims = TokenFactory.Claims("api-user");
        claims["https://example.com/claims"] = new JsonObject { ["tenant"] = "acme" };
        string jws = TokenFactory.Sign(IdpKey, claims);
        string jwe = JweFactory.RsaOaep256Gcm(GatewayKey, "gateway-2026", jws, cty: "JWT");

        HttpReply reply = await Nginx.GetAsync("/api/orders", jwe);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Does.StartWith("Bearer " + jws + "|acme|api-user"));
        Assert.That((await Nginx.GetAsync("/api/orders", jws)).Status, Is.EqualTo(401), "a bare JWS is refused");
    }

    [Test]
    public async Task Partner_location_takes_claims_encrypted_with_the_shared_key()
    {
        JsonObject claims = TokenFactory.Claims("partner-user");
        claims["iss"] = "https://partner.example.com";
        string good = JweFactory.DirGcm(PartnerKey, "partner-1", TokenFactory.Json(claims));
        claims["iss"] = "https://elsewhere.example.com";
        string foreign = JweFactory.DirGcm(PartnerKey, "partner-1", TokenFactory.Json(claims));

        HttpReply reply = await Nginx.GetAsync("/partner/x", good);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Does.EndWith("|partner-user"));
        Assert.That((await Nginx.GetAsync("/partner/x", foreign)).Status, Is.EqualTo(401));
    }
}
