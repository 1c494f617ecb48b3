using System;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// STSExchange jwt: nginx mints the target token itself from a JSON object
/// of claims ($http_x_claims, or $jwt_claims behind auth_jwt), signed with
/// the configured private JWK (RS256, ES256, EdDSA), with iss/aud/client_id
/// from the options, sub from the source, its own iat and jti, exp from the
/// source or the lifetime, and the claims projection applied. Each token is
/// verified with the public key by an independent implementation.
/// </summary>
[TestFixture]
public sealed class JwtMintTests : NginxFixture
{
    private const string Iss = "https://gateway.example.test";
    private const string Aud = "backend-api";
    private const string ClientId = "gw-client";
    private const string Projection = "{sub, email, roles: .realm_access.roles}";

    private static readonly SigningKey InboundKey = AlgVariant.Get("ES256").Key(0);

    private readonly StsKey _rsa = StsKey.Create("RS256", "mint-rsa");
    private readonly StsKey _ec = StsKey.Create("ES256", "mint-ec");
    private readonly StsKey _ed = StsKey.Create("EdDSA", "mint-ed");

    protected override Task StartNginx(NginxInstance nginx)
    {
        string ecFile = nginx.WriteFile("sts/mint-ec.jwk", _ec.PrivateJwk + "\n");
        nginx.WriteFile("inbound.jwks", TokenFactory.Jwks(InboundKey));
        string options = $"iss={Iss}&aud={Aud}&client_id={ClientId}";
        string echo = nginx.Echo("$t");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /mint-rs256 {
                    STSExchange jwt '{{_rsa.PrivateJwk}}' "{{options}}" '{{Projection}}';
                    STSVariables $http_x_claims $t;
                    {{echo}}
                }
                location = /mint-es256 {
                    STSExchange jwt file:{{ecFile}} "{{options}}" '{{Projection}}';
                    STSVariables $http_x_claims $t;
                    {{echo}}
                }
                location = /mint-eddsa {
                    STSExchange jwt '{{_ed.PrivateJwk}}' "{{options}}" '{{Projection}}';
                    STSVariables $http_x_claims $t;
                    {{echo}}
                }
                location = /mint-all {
                    STSExchange jwt '{{_rsa.PrivateJwk}}' "{{options}}";
                    STSVariables $http_x_claims $t;
                    {{echo}}
                }
                location = /mint-lifetime {
                    STSExchange jwt '{{_ec.PrivateJwk}}' "iss={{Iss}}&lifetime=120";
                    STSVariables $http_x_claims $t;
                    {{echo}}
                }
                location = /mint-behind-auth-jwt {
                    auth_jwt "sts";
                    auth_jwt_key_file inbound.jwks;
                    STSExchange jwt '{{_ed.PrivateJwk}}' "{{options}}" '{{Projection}}';
                    STSVariables $jwt_claims $t;
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    private StsKey KeyOf(string alg) => alg switch
    {
        "RS256" => _rsa,
        "ES256" => _ec,
        _ => _ed,
    };

    private static JsonObject SourceClaims(string sub, long? exp = null) => new()
    {
        ["sub"] = sub,
        ["email"] = sub + "@example.test",
        ["realm_access"] = new JsonObject { ["roles"] = new JsonArray("reader", "writer") },
        ["secret_claim"] = "must-not-be-copied",
        ["nonce"] = Guid.NewGuid().ToString("N"),
        ["exp"] = exp ?? TokenFactory.Now + 1800,
    };

    private async Task<HttpReply> MintAsync(string path, string? claimsHeader) =>
        await Nginx.GetAsync(path, configure: r =>
        {
            if (claimsHeader is not null)
            {
                r.Headers.TryAddWithoutValidation("X-Claims", claimsHeader);
            }
        });

    private static void AssertFresh(JsonElement payload)
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.That(payload.GetProperty("iat").GetInt64(), Is.InRange(now - 60, now + 5), "iat is the minting time");
        Assert.That(payload.GetProperty("jti").GetString(), Has.Length.GreaterThanOrEqualTo(16));
    }

    [TestCase("RS256", "/mint-rs256", TestName = "Minted_RS256_token_from_an_inline_JWK_verifies_with_the_public_key")]
    [TestCase("ES256", "/mint-es256", TestName = "Minted_ES256_token_from_a_JWK_file_verifies_with_the_public_key")]
    [TestCase("EdDSA", "/mint-eddsa", TestName = "Minted_EdDSA_token_verifies_with_the_public_key")]
    public async Task Minted_token(string alg, string path)
    {
        StsKey key = KeyOf(alg);
        long exp = TokenFactory.Now + 1234;
        JsonObject claims = SourceClaims("user-" + alg, exp);

        HttpReply reply = await MintAsync(path, claims.ToJsonString());

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        string token = reply.Body;
        JsonElement header = StsKey.Header(token);
        Assert.That(header.GetProperty("alg").GetString(), Is.EqualTo(alg));
        Assert.That(header.GetProperty("kid").GetString(), Is.EqualTo(key.Kid));
        JsonElement payload = await key.AssertSignedAsync(token);
        Assert.That(StsKey.Names(payload), Is.EquivalentTo(new[] { "sub", "email", "roles", "iss", "aud", "client_id", "iat", "jti", "exp" }),
            "the projection, then the gateway's claims: nothing else of the source");
        Assert.That(payload.GetProperty("iss").GetString(), Is.EqualTo(Iss));
        Assert.That(payload.GetProperty("aud").GetString(), Is.EqualTo(Aud));
        Assert.That(payload.GetProperty("client_id").GetString(), Is.EqualTo(ClientId));
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("user-" + alg));
        Assert.That(payload.GetProperty("email").GetString(), Is.EqualTo("user-" + alg + "@example.test"));
        Assert.That(payload.GetProperty("roles").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "reader", "writer" }));
        Assert.That(payload.GetProperty("exp").GetInt64(), Is.EqualTo(exp), "the source's exp");
        AssertFresh(payload);
        Assert.That(await StsKey.Create(alg, key.Kid).VerifiesAsync(token), Is.False, "another key with that kid does not verify it");
    }

    [Test]
    public async Task Minting_without_a_projection_copies_the_source_but_sets_its_own_iat_and_jti()
    {
        JsonObject claims = SourceClaims("copy-all");
        claims["iat"] = 1000;
        claims["jti"] = "source-jti";
        claims["iss"] = "https://source-issuer.example.test";

        HttpReply reply = await MintAsync("/mint-all", claims.ToJsonString());

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        JsonElement payload = await _rsa.AssertSignedAsync(reply.Body);
        Assert.That(payload.GetProperty("secret_claim").GetString(), Is.EqualTo("must-not-be-copied"), "no projection: every claim");
        Assert.That(payload.GetProperty("realm_access").GetProperty("roles").GetArrayLength(), Is.EqualTo(2));
        Assert.That(payload.GetProperty("nonce").GetString(), Is.EqualTo((string)claims["nonce"]!));
        Assert.That(payload.GetProperty("iss").GetString(), Is.EqualTo(Iss), "the configured iss replaces the source's");
        Assert.That(payload.GetProperty("jti").GetString(), Is.Not.EqualTo("source-jti"));
        Assert.That(payload.GetProperty("exp").GetInt64(), Is.EqualTo((long)claims["exp"]!));
        AssertFresh(payload);
        Assert.That(StsKey.Names(payload).GroupBy(n => n).Where(g => g.Count() > 1), Is.Empty, "no member twice");
    }

    [Test]
    public async Task Source_without_exp_gets_the_configured_lifetime()
    {
        var claims = new JsonObject { ["sub"] = "no-exp", ["nonce"] = Guid.NewGuid().ToString("N") };

        HttpReply reply = await MintAsync("/mint-lifetime", claims.ToJsonString());

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        JsonElement payload = await _ec.AssertSignedAsync(reply.Body);
        Assert.That(payload.GetProperty("exp").GetInt64(), Is.EqualTo(payload.GetProperty("iat").GetInt64() + 120));
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("no-exp"));
        Assert.That(payload.TryGetProperty("aud", out _), Is.False, "no aud configured, none in the source");
    }

    [Test]
    public async Task Projection_leaves_out_what_the_source_lacks()
    {
        var claims = new JsonObject { ["sub"] = "plain", ["nonce"] = Guid.NewGuid().ToString("N"), ["exp"] = TokenFactory.Now + 600 };

        HttpReply reply = await MintAsync("/mint-rs256", claims.ToJsonString());

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        JsonElement payload = await _rsa.AssertSignedAsync(reply.Body);
        Assert.That(StsKey.Names(payload), Is.EquivalentTo(new[] { "sub", "iss", "aud", "client_id", "iat", "jti", "exp" }));
    }

    [Test]
    public async Task Different_sources_get_different_tokens_and_the_same_source_its_cached_token()
    {
        string a = SourceClaims("same-a").ToJsonString(), b = SourceClaims("same-b").ToJsonString();

        HttpReply a1 = await MintAsync("/mint-eddsa", a);
        HttpReply b1 = await MintAsync("/mint-eddsa", b);
        HttpReply a2 = await MintAsync("/mint-eddsa", a);

        Assert.That(new[] { a1.Status, b1.Status, a2.Status }, Is.All.EqualTo(200));
        Assert.That(StsKey.Payload(a1.Body).GetProperty("sub").GetString(), Is.EqualTo("same-a"));
        Assert.That(StsKey.Payload(b1.Body).GetProperty("sub").GetString(), Is.EqualTo("same-b"));
        Assert.That(a2.Body, Is.EqualTo(a1.Body), "the minted token is cached for its source");
    }

    [Test]
    public async Task Claims_of_a_verified_jwt_are_the_source_behind_auth_jwt()
    {
        string inbound = TokenFactory.Sign(InboundKey, TokenFactory.Claims("jwt-user", new JsonObject
        {
            ["email"] = "jwt-user@example.test",
            ["realm_access"] = new JsonObject { ["roles"] = new JsonArray("admin") },
            ["tenant"] = "t1",
        }));

        HttpReply reply = await Nginx.GetAsync("/mint-behind-auth-jwt", inbound);
        HttpReply unauthenticated = await Nginx.GetAsync("/mint-behind-auth-jwt");
        HttpReply forged = await Nginx.GetAsync("/mint-behind-auth-jwt",
            TokenFactory.Sign(AlgVariant.Get("ES256").Stranger(), TokenFactory.Claims("forged")));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        JsonElement payload = await _ed.AssertSignedAsync(reply.Body);
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("jwt-user"));
        Assert.That(payload.GetProperty("email").GetString(), Is.EqualTo("jwt-user@example.test"));
        Assert.That(payload.GetProperty("roles").EnumerateArray().Select(e => e.GetString()), Is.EqualTo(new[] { "admin" }));
        Assert.That(payload.TryGetProperty("tenant", out _), Is.False);
        Assert.That(payload.GetProperty("exp").GetInt64(), Is.EqualTo(StsKey.Payload(inbound).GetProperty("exp").GetInt64()));
        Assert.That(reply.Body, Is.Not.EqualTo(inbound));
        Assert.That(unauthenticated.Status, Is.EqualTo(401));
        Assert.That(forged.Status, Is.EqualTo(401));
        Assert.That(forged.Body, Does.Not.Contain("eyJ"), "no token is minted for a forged one");
    }

    [TestCase("not json at all", TestName = "Source_that_is_not_JSON_is_401")]
    [TestCase("[\"sub\",\"x\"]", TestName = "Source_that_is_a_JSON_array_is_401")]
    [TestCase("{\"sub\":\"x\"", TestName = "Source_that_is_truncated_JSON_is_401")]
    public async Task Unusable_source(string source)
    {
        HttpReply reply = await MintAsync("/mint-rs256", source);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        string line = Nginx.WaitForLogLine(TestLogMark, "sts: rejected: ");
        Assert.That(StsLog.LevelOf(line), Is.EqualTo("info"));
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain(source));
    }

    [Test]
    public async Task No_source_is_401_with_a_bare_challenge()
    {
        HttpReply reply = await MintAsync("/mint-rs256", null);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer"));
    }
}
