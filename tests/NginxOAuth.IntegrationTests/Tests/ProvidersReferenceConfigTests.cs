using System;
using System.IO;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// nginx-conf/jwt-providers.conf runs as written, with only the listen line,
/// the key file path, the IdP addresses and the backend substituted (the
/// backend is the echo server, answering with the variables forwarded).
/// </summary>
[TestFixture]
public sealed class ProvidersReferenceConfigTests : NginxFixture
{
    private static readonly SigningKey Login = AlgVariant.Get("RS256").Key(31);
    private static readonly SigningKey Partner = AlgVariant.Get("ES256").Key(32);
    private static readonly SigningKey Idp = AlgVariant.Get("RS256").Key(33);

    private FakeHttpServer _idp = null!;

    private string IdpIssuer => _idp.BaseUrl + "/realms/demo";

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeHttpServer.StartAsync();
        _idp.Set("/partner/jwks.json", FakeResponse.Json(TokenFactory.Jwks(Partner)));
        _idp.Set("/realms/demo/.well-known/openid-configuration", FakeResponse.Json(new JsonObject
        {
            ["issuer"] = IdpIssuer,
            ["jwks_uri"] = IdpIssuer + "/certs",
        }.ToJsonString()));
        _idp.Set("/realms/demo/certs", FakeResponse.Json(TokenFactory.Jwks(Idp)));

        string login = nginx.WriteFile("login.jwks", TokenFactory.Jwks(Login));
        string text = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "jwt-providers.conf"));
        string[] lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        int open = Array.FindIndex(lines, l => l.TrimEnd() == "http {");
        int close = Array.FindLastIndex(lines, l => l.TrimEnd() == "}");
        string http = string.Join('\n', lines[(open + 1)..close])
            .Replace("listen 8080;", $"listen 127.0.0.1:{nginx.Port};", StringComparison.Ordinal)
            .Replace("/etc/nginx/keys/login.jwks", login, StringComparison.Ordinal)
            .Replace("http://127.0.0.1:9001/", _idp.BaseUrl + "/", StringComparison.Ordinal)
            .Replace("https://idp.example.com/realms/demo", IdpIssuer, StringComparison.Ordinal)
            .Replace("proxy_pass http://127.0.0.1:9000;",
                "proxy_set_header X-Echo \"$jwt_provider|$jwt_claim_sub\"; "
                + $"proxy_pass http://127.0.0.1:{nginx.EchoPort}/echo;", StringComparison.Ordinal);
        nginx.Start(http);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private static string Token(SigningKey key, string iss, JsonObject? extra = null, JsonObject? header = null)
    {
        JsonObject claims = TokenFactory.Claims("u-" + key.Kid, extra);
        claims["iss"] = iss;
        return TokenFactory.Sign(key, claims, header);
    }

    private string AccessToken(long lifetime, string aud = "api") => Token(Idp, IdpIssuer,
        new JsonObject { ["aud"] = aud, ["iat"] = TokenFactory.Now - 10, ["exp"] = TokenFactory.Now - 10 + lifetime },
        new JsonObject { ["typ"] = "at+jwt" });

    [Test]
    public async Task The_api_takes_each_issuers_tokens_and_names_the_issuer()
    {
        HttpReply login = await Nginx.GetAsync("/api/x", Token(Login, "https://login.example.com"));
        HttpReply partner = await Nginx.GetAsync("/api/x", Token(Partner, "https://partner.example.com"));
        HttpReply idp = await Nginx.GetAsync("/api/x", AccessToken(1800));

        Assert.That(login.Status, Is.EqualTo(200), login.ToString());
        Assert.That(login.Body, Does.StartWith($"https://login.example.com|u-{Login.Kid}"));
        Assert.That(partner.Status, Is.EqualTo(200), partner.ToString());
        Assert.That(partner.Body, Does.StartWith($"https://partner.example.com|u-{Partner.Kid}"));
        Assert.That(idp.Status, Is.EqualTo(200), idp.ToString());
        Assert.That(idp.Body, Does.StartWith($"{IdpIssuer}|u-{Idp.Kid}"));
    }

    [Test]
    public async Task The_api_refuses_foreign_keys_and_the_rfc9068_violations()
    {
        Assert.That((await Nginx.GetAsync("/api/x", Token(Partner, "https://login.example.com"))).Status,
            Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/api/x", Token(Login, IdpIssuer))).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/api/x", AccessToken(7200))).Status, Is.EqualTo(401), "over max_lifetime=1h");
        Assert.That((await Nginx.GetAsync("/api/x", AccessToken(1800, "web"))).Status, Is.EqualTo(401), "audience");
        Assert.That((await Nginx.GetAsync("/api/x", Token(Idp, IdpIssuer))).Status, Is.EqualTo(401), "typ JWT");
    }

    [Test]
    public async Task The_account_location_inherits_the_http_levels_provider_only()
    {
        Assert.That((await Nginx.GetAsync("/account/x", Token(Login, "https://login.example.com"))).Status,
            Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/account/x", Token(Partner, "https://partner.example.com"))).Status,
            Is.EqualTo(401));
    }
}
