using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;
using static NginxOAuth.IntegrationTests.Harness.ProviderKeys;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// auth_jwt_provider: several issuers on one location, each verified with
/// its own keys only (a key file, a key request, discovery), chosen by the
/// token's iss; an unknown or missing iss is 401; the RFC 9068 options per
/// provider; inheritance and override; the verified-token cache never
/// serves one provider's verification to another.
/// </summary>
[TestFixture]
public sealed class ProviderTests : NginxFixture
{
    private static readonly SigningKey KeyC = AlgVariant.Get("RS256").Key(23);

    private FakeHttpServer _idp = null!;
    private int _port2;

    private string IssC => $"{_idp.BaseUrl}/realms/c";

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeHttpServer.StartAsync();
        string a = ProviderKeys.Serve(nginx, _idp);
        _idp.Set("/realms/c/.well-known/openid-configuration", FakeResponse.Json(new JsonObject
        {
            ["issuer"] = IssC,
            ["jwks_uri"] = IssC + "/certs",
        }.ToJsonString()));
        _idp.Set("/realms/c/certs", FakeResponse.Json(TokenFactory.Jwks(KeyC)));

        _port2 = NginxInstance.NewPort();

        string echo = nginx.Echo("sub=$jwt_claim_sub provider=$jwt_provider iss=$jwt_claim_iss");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "providers";
                location /_keys/ { internal; auth_jwt off; proxy_pass {{_idp.BaseUrl}}/; }

                location /three {
                    auth_jwt_provider {{IssA}} key_file={{a}};
                    auth_jwt_provider {{IssB}} key_request=/_keys/b/certs;
                    auth_jwt_provider {{IssC}} discovery;
                    {{echo}}
                }
                location /rfc9068 {
                    auth_jwt_provider {{IssA}} key_file={{a}} typ=at+jwt require_exp
                                      max_lifetime=10m audience=api audience=https://api2.example;
                    auth_jwt_provider {{IssB}} key_request=/_keys/b/certs;
                    {{echo}}
                }
                location /requireexp {
                    auth_jwt_validate_exp off;
                    auth_jwt_provider {{IssA}} key_file={{a}} require_exp;
                    {{echo}}
                }
                location /rules {
                    auth_jwt_require_claim role eq admin;
                    auth_jwt_provider {{IssA}} key_file={{a}};
                    {{echo}}
                }
                location /vc-x {
                    auth_jwt_verify_cache zone=providers_vc:1m;
                    auth_jwt_provider {{IssA}} key_file={{a}} audience=x;
                    auth_jwt_provider {{IssB}} key_request=/_keys/b/certs;
                    {{echo}}
                }
                location /vc-y {
                    auth_jwt_verify_cache zone=providers_vc:1m;
                    auth_jwt_provider {{IssA}} key_file={{a}} audience=y;
                    {{echo}}
                }
            }

            server {
                listen 127.0.0.1:{{_port2}};
                auth_jwt "inherited";
                auth_jwt_provider {{IssA}} key_file={{a}};
                location /_keys/ { internal; auth_jwt off; proxy_pass {{_idp.BaseUrl}}/; }

                location /inherited {
                    {{echo}}
                }
                location /overridden {
                    auth_jwt_provider {{IssB}} key_request=/_keys/b/certs;
                    {{echo}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private static JsonObject AtJwt => new() { ["typ"] = "at+jwt" };

    [Test]
    public async Task Each_issuers_token_is_accepted_with_its_own_keys()
    {
        HttpReply a = await Nginx.GetAsync("/three", Token(KeyA, IssA));
        HttpReply b = await Nginx.GetAsync("/three", Token(KeyB, IssB));
        HttpReply c = await Nginx.GetAsync("/three", Token(KeyC, IssC));

        Assert.That(a.Status, Is.EqualTo(200), a.ToString());
        Assert.That(a.Body, Does.Contain($"provider={IssA} "));
        Assert.That(b.Status, Is.EqualTo(200), b.ToString());
        Assert.That(b.Body, Does.Contain($"provider={IssB} "));
        Assert.That(c.Status, Is.EqualTo(200), c.ToString());
        Assert.That(c.Body, Does.Contain($"provider={IssC} iss={IssC}"));
    }

    [TestCase("A signs, claims B (key request)", 0, 1)]
    [TestCase("A signs, claims C (discovery)", 0, 2)]
    [TestCase("B signs, claims A (key file)", 1, 0)]
    [TestCase("C signs, claims B (key request)", 2, 1)]
    public async Task A_token_claiming_another_issuer_is_refused(string what, int signer, int claimed)
    {
        SigningKey[] keys = [KeyA, KeyB, KeyC];
        string[] issuers = [IssA, IssB, IssC];

        // the claimed issuer works with its own key: the refusal is the keys'
        Assert.That((await Nginx.GetAsync("/three", Token(keys[claimed], issuers[claimed]))).Status, Is.EqualTo(200));

        HttpReply reply = await Nginx.GetAsync("/three", Token(keys[signer], issuers[claimed]));

        Assert.That(reply.Status, Is.EqualTo(401), what);
        Assert.That(reply.Challenge, Does.Contain("error=\"invalid_token\""));
    }

    [Test]
    public async Task An_unknown_issuer_is_refused_with_a_clear_log_line()
    {
        HttpReply reply = await Nginx.GetAsync("/three", Token(KeyA, "https://evil.example"));

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Does.Contain("error=\"invalid_token\""));
        Nginx.WaitForLogLine(TestLogMark, "no auth_jwt_provider for iss \"https://evil.example\"");
    }

    [Test]
    public async Task A_token_without_iss_is_refused_with_a_clear_log_line()
    {
        HttpReply reply = await Nginx.GetAsync("/three", Token(KeyA, null));

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Does.Contain("error=\"invalid_token\""));
        Nginx.WaitForLogLine(TestLogMark, "the token has no \"iss\"");
    }

    [Test]
    public async Task An_iss_that_is_not_a_string_or_a_garbage_token_is_refused()
    {
        Assert.That((await Nginx.GetAsync("/three", Token(KeyA, null, new JsonObject { ["iss"] = 1 }))).Status,
            Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/three", "not-a-jwt")).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/three")).Status, Is.EqualTo(401));
    }

    /// <summary>aud, and a lifetime within /rfc9068's max_lifetime=10m.</summary>
    private static JsonObject Aud(string aud) => Short(new JsonObject { ["aud"] = aud });

    private static JsonObject Short(JsonObject extra)
    {
        extra["iat"] = TokenFactory.Now - 60;
        extra["exp"] = TokenFactory.Now + 300;
        return extra;
    }

    [Test]
    public async Task Rfc9068_typ_at_jwt_is_required()
    {
        Assert.That((await Nginx.GetAsync("/rfc9068", Token(KeyA, IssA, Aud("api"), AtJwt))).Status,
            Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/rfc9068",
            Token(KeyA, IssA, Aud("api"), new JsonObject { ["typ"] = "Application/AT+JWT" }))).Status,
            Is.EqualTo(200), "the media type form, any case");
        Assert.That((await Nginx.GetAsync("/rfc9068", Token(KeyA, IssA, Aud("api")))).Status,
            Is.EqualTo(401), "typ JWT");
        Nginx.WaitForLogLine(TestLogMark, "typ is not at\\+jwt");

        // the other provider on the location has no such option
        Assert.That((await Nginx.GetAsync("/rfc9068", Token(KeyB, IssB))).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Rfc9068_exp_is_required()
    {
        JsonObject noExp = new() { ["sub"] = "alice", ["iss"] = IssA, ["aud"] = "api", ["iat"] = TokenFactory.Now };
        Assert.That((await Nginx.GetAsync("/rfc9068", TokenFactory.Sign(KeyA, noExp, AtJwt))).Status,
            Is.EqualTo(401));

        // with auth_jwt_validate_exp off, require_exp still requires (and checks) it
        JsonObject noExp2 = new() { ["sub"] = "alice", ["iss"] = IssA };
        Assert.That((await Nginx.GetAsync("/requireexp", TokenFactory.Sign(KeyA, noExp2))).Status,
            Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/requireexp", Token(KeyA, IssA))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/requireexp",
            Token(KeyA, IssA, new JsonObject { ["exp"] = TokenFactory.Now - 3600 }))).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task Rfc9068_max_lifetime_is_enforced()
    {
        long now = TokenFactory.Now;
        JsonObject within = new() { ["aud"] = "api", ["iat"] = now - 60, ["exp"] = now + 500 };
        JsonObject tooLong = new() { ["aud"] = "api", ["iat"] = now - 60, ["exp"] = now + 3600 };
        JsonObject noIat = new() { ["sub"] = "alice", ["iss"] = IssA, ["aud"] = "api", ["exp"] = now + 300 };

        Assert.That((await Nginx.GetAsync("/rfc9068", Token(KeyA, IssA, within, AtJwt))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/rfc9068", Token(KeyA, IssA, tooLong, AtJwt))).Status, Is.EqualTo(401));
        Nginx.WaitForLogLine(TestLogMark, "longer than max_lifetime");
        Assert.That((await Nginx.GetAsync("/rfc9068", TokenFactory.Sign(KeyA, noIat, AtJwt))).Status,
            Is.EqualTo(401));
        Nginx.WaitForLogLine(TestLogMark, "no numeric iat");
    }

    [Test]
    public async Task Rfc9068_audience_must_be_one_of_the_providers()
    {
        JsonObject array = Short(new JsonObject { ["aud"] = new JsonArray("other", "https://api2.example") });

        Assert.That((await Nginx.GetAsync("/rfc9068", Token(KeyA, IssA, Aud("api"), AtJwt))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/rfc9068", Token(KeyA, IssA, array, AtJwt))).Status, Is.EqualTo(200),
            "one of several, in an array");
        Assert.That((await Nginx.GetAsync("/rfc9068", Token(KeyA, IssA, Aud("web"), AtJwt))).Status, Is.EqualTo(401));
        Nginx.WaitForLogLine(TestLogMark, "aud names none of the provider's audiences");
        Assert.That((await Nginx.GetAsync("/rfc9068",
            Token(KeyA, IssA, Short(new JsonObject { ["aud"] = new JsonArray("x", "y") }), AtJwt))).Status,
            Is.EqualTo(401));
        JsonObject noAud = new() { ["sub"] = "alice", ["iss"] = IssA, ["iat"] = TokenFactory.Now, ["exp"] = TokenFactory.Now + 300 };
        Assert.That((await Nginx.GetAsync("/rfc9068", TokenFactory.Sign(KeyA, noAud, AtJwt))).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task The_locations_rules_apply_to_every_provider()
    {
        Assert.That((await Nginx.GetAsync("/rules", Token(KeyA, IssA, new JsonObject { ["role"] = "admin" }))).Status,
            Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/rules", Token(KeyA, IssA, new JsonObject { ["role"] = "user" }))).Status,
            Is.EqualTo(401));
    }

    [Test]
    public async Task Providers_are_inherited_and_overridden()
    {
        Assert.That((await Nginx.GetAsync("/inherited", Token(KeyA, IssA), _port2)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/inherited", Token(KeyB, IssB), _port2)).Status, Is.EqualTo(401));

        // a location's own providers replace the inherited ones
        Assert.That((await Nginx.GetAsync("/overridden", Token(KeyB, IssB), _port2)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/overridden", Token(KeyA, IssA), _port2)).Status, Is.EqualTo(401));
        Nginx.WaitForLogLine(TestLogMark, "no auth_jwt_provider for iss \"https://a.example\"");
    }

    [Test]
    public async Task The_verify_cache_does_not_cross_providers()
    {
        string forX = Token(KeyA, IssA, Aud("x"));

        // cached for /vc-x's provider A (audience x); /vc-y's provider A wants y
        for (int i = 0; i < 3; i++)
        {
            Assert.That((await Nginx.GetAsync("/vc-x", forX)).Status, Is.EqualTo(200));
            Assert.That((await Nginx.GetAsync("/vc-y", forX)).Status, Is.EqualTo(401));
        }

        // A's key never verifies for B, cached or not
        string aAsB = Token(KeyA, IssB);
        Assert.That((await Nginx.GetAsync("/vc-x", Token(KeyB, IssB))).Status, Is.EqualTo(200));
        for (int i = 0; i < 2; i++)
        {
            Assert.That((await Nginx.GetAsync("/vc-x", aAsB)).Status, Is.EqualTo(401));
        }
    }
}

/// <summary>auth_jwt_provider mistakes are refused by nginx -t at the directive's file:line.</summary>
[TestFixture]
public sealed class ProviderConfigTests
{
    private static string Provider(string rest) => $"auth_jwt_provider https://a.example {rest};";

    [TestCase("key_file={A} typ=jwt", "invalid parameter \"typ=jwt\"")]
    [TestCase("key_file={A} max_lifetime=soon", "invalid max_lifetime \"soon\"")]
    [TestCase("key_file={A} max_lifetime=0", "invalid max_lifetime")]
    [TestCase("audience=api", "has no key source")]
    [TestCase("key_file={A} color=blue", "invalid parameter \"color=blue\"")]
    [TestCase("key_file={A} format=pem", "invalid parameter \"format=pem\"")]
    [TestCase("key_file={A} audience=", "invalid parameter \"audience=\"")]
    [TestCase("key_file={A} discovery_uri=/_idp/ discovery discovery", "one discovery per provider")]
    [TestCase("discovery=https://b.example/.well-known/openid-configuration discovery_uri=/_idp/",
        "names the issuer \"https://b.example\"")]
    [TestCase("key_file={D}/missing.jwks", "missing.jwks")]
    [TestCase("key_file={A} discovery_uri=/_idp/", "without discovery")]
    [TestCase("discovery discovery_uri=/_idp/ discovery_color=blue", "invalid parameter \"color=blue\"")]
    [TestCase("key_request=", "invalid parameter \"key_request=\"")]
    public void A_provider_mistake_is_refused_at_its_line(string rest, string message)
    {
        using var nginx = new NginxInstance("config");
        string a = nginx.WriteFile("a.jwks", TokenFactory.Jwks(KeyFor()));
        string directive = Provider(rest.Replace("{A}", a).Replace("{D}", nginx.Directory));
        nginx.Configure($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location /p {
                    auth_jwt "p";
                    {{directive}}
                    {{nginx.Echo("x")}}
                }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain(message));
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{nginx.LineOf("auth_jwt_provider")}"));
    }

    [TestCase("auth_jwt_key_file {A};", "keys belong to the providers")]
    [TestCase("auth_jwt_type encrypted;", "needs \"auth_jwt_type signed\"")]
    [TestCase("auth_jwt_provider https://a.example key_file={A} require_exp;", "is duplicate")]
    public void A_provider_beside_what_it_cannot_be_with_is_refused(string other, string message)
    {
        using var nginx = new NginxInstance("config");
        string a = nginx.WriteFile("a.jwks", TokenFactory.Jwks(KeyFor()));
        nginx.Configure($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location /p {
                    auth_jwt "p";
                    auth_jwt_provider https://a.example key_file={{a}};
                    {{other.Replace("{A}", a)}}
                    {{nginx.Echo("x")}}
                }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain(message));
        int line = other.StartsWith("auth_jwt_provider", System.StringComparison.Ordinal)
            ? nginx.LineOf("require_exp")
            : nginx.LineOf("auth_jwt_provider");
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{line}"));
    }

    [Test]
    public void A_valid_provider_configuration_passes_nginx_t()
    {
        using var nginx = new NginxInstance("config");
        string a = nginx.WriteFile("a.jwks", TokenFactory.Jwks(KeyFor()));
        string kv = nginx.WriteFile("a.keyval", TokenFactory.Keyval(KeyFor()));
        nginx.Configure($$"""
            auth_jwt_provider https://h.example key_file={{a}};
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "p";
                location /_idp/ { internal; auth_jwt off; proxy_pass http://127.0.0.1:9/; }
                location /p {
                    auth_jwt_provider https://a.example key_file={{a}} typ=AT+JWT require_exp max_lifetime=1h
                                      audience=a audience=b;
                    auth_jwt_provider https://b.example format=keyval key_file={{kv}};
                    auth_jwt_provider http://127.0.0.1:9/realms/x discovery discovery_uri=/_idp/
                                      discovery_metadata=oauth discovery_http_timeout=5;
                    {{nginx.Echo("x")}}
                }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Not.Contain("[warn]"));
    }

    private static SigningKey KeyFor() => AlgVariant.Get("RS256").Key(21);
}
