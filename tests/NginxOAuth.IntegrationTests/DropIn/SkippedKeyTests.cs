using System.Linq;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>
/// Key files like nginx-auth-jwt's test data: a key we will not use (HMAC
/// shorter than its hash, RSA under 2048 bits, unknown kty or crv, an
/// encryption key) is skipped with a warning at nginx -t; the rest loads.
/// </summary>
[TestFixture]
public sealed class SkippedKeyTests : NginxFixture
{
    private static readonly HmacSigningKey Short = new("HS256", "short", new byte[12]);
    private static readonly SigningKey Good = AlgVariant.Get("ES256").Key(0);
    private static readonly RsaSigningKey Small = new("RS256", "rsa1024", RSA.Create(1024));

    private static string MixedJwks()
    {
        JsonObject unknownKty = new() { ["kty"] = "XYZ", ["kid"] = "odd" };
        JsonObject unknownCrv = new() { ["kty"] = "EC", ["crv"] = "P-192", ["kid"] = "p192", ["x"] = "QUFB", ["y"] = "QUFB" };
        JsonObject enc = AlgVariant.Get("RS256").Key(1).Jwk(kid: "enc", use: "enc");
        return TokenFactory.Jwks(Short.Jwk(alg: "HS256"), Small.Jwk(), unknownKty, unknownCrv, enc, Good.Jwk());
    }

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("mixed.jwks", MixedJwks());
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location / {
                    auth_jwt "mixed";
                    auth_jwt_key_file mixed.jwks;
                    {{nginx.Echo("sub=$jwt_claim_sub")}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    [Test]
    public void Nginx_t_warns_once_per_skipped_key_with_file_index_and_kid()
    {
        ConfigTestResult result = Nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        string[] warnings = result.Output.Split('\n').Where(l => l.Contains("[warn]")).ToArray();
        Assert.That(warnings, Has.Length.EqualTo(5), result.Output);
        Assert.That(warnings[0], Does.Contain("mixed.jwks\": key #0 (kid \"short\") skipped: HMAC key shorter than its hash"));
        Assert.That(warnings[1], Does.Contain("key #1 (kid \"rsa1024\") skipped: RSA key shorter than 2048 bits"));
        Assert.That(warnings[2], Does.Contain("key #2 (kid \"odd\") skipped: unknown key type (kty)"));
        Assert.That(warnings[3], Does.Contain("key #3 (kid \"p192\") skipped: unknown curve (crv)"));
        Assert.That(warnings[4], Does.Contain("key #4 (kid \"enc\") skipped: encryption key"));
        Assert.That(warnings, Has.All.Contain("\"auth_jwt_key_file\""), "each names the directive");
        Assert.That(warnings, Has.All.Contain($"{Nginx.ConfigPath}:"), "each names the directive's file:line");
    }

    [Test]
    public async Task The_usable_key_of_the_file_verifies()
    {
        HttpReply reply = await Nginx.GetAsync("/", TokenFactory.Sign(Good, TokenFactory.Claims("gina")));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=gina"));
    }

    [TestCase("short", "HMAC key shorter than its hash", TestName = "Token_for_the_short_HMAC_key_is_401_and_says_why")]
    [TestCase("rsa1024", "RSA key shorter than 2048 bits", TestName = "Token_for_the_small_RSA_key_is_401_and_says_why")]
    public async Task Token_that_needs_a_skipped_key_is_401_with_an_info_line(string kid, string why)
    {
        SigningKey key = kid == "short" ? Short : Small;
        HttpReply reply = await Nginx.GetAsync("/", TokenFactory.Sign(key, TokenFactory.Claims("mallory")));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"mixed\", error=\"invalid_token\""));
        Nginx.WaitForLogLine(TestLogMark,
            $@"\[info\].*auth_jwt: rejected: the key it needs was skipped when its set was loaded: {why} \(kid ""{kid}""");
    }

    [Test]
    public void File_without_a_usable_key_is_still_an_error()
    {
        using var nginx = new NginxInstance("skipped");
        nginx.WriteFile("weak.jwks", TokenFactory.Jwks(Short.Jwk(alg: "HS256"), Small.Jwk()));
        nginx.Configure($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location / { auth_jwt "weak"; auth_jwt_key_file weak.jwks; {{nginx.Echo("x")}} }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain("weak.jwks\": key #0: HMAC key shorter than its hash"));
    }

    [Test]
    public void Kid_with_control_characters_is_escaped_in_the_warning()
    {
        using var nginx = new NginxInstance("skipped");
        nginx.WriteFile("odd.jwks", TokenFactory.Jwks(new JsonObject { ["kty"] = "XYZ", ["kid"] = "a\nb\"c" }, Good.Jwk()));
        nginx.Configure($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location / { auth_jwt "odd"; auth_jwt_key_file odd.jwks; {{nginx.Echo("x")}} }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("key #0 (kid \"a\\x0ab\\x22c\") skipped"));
    }
}
