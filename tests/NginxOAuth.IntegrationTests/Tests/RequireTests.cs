using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>auth_jwt_require: values that must be non-empty and not "0", with error=.</summary>
[TestFixture]
public sealed class RequireTests : NginxFixture
{
    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            map $jwt_claim_iss $valid_iss {
                good    1;
                default 0;
            }

            map $jwt_claim_role $is_admin {
                admin   1;
                default "";
            }

            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "require";
                auth_jwt_key_file keys.jwks;

                location /iss { auth_jwt_require $valid_iss; {{echo}} }
                location /iss-403 { auth_jwt_require $valid_iss error=403; {{echo}} }
                location /two-values { auth_jwt_require $valid_iss $is_admin; {{echo}} }
                location /two-directives {
                    auth_jwt_require $valid_iss;
                    auth_jwt_require $is_admin error=403;
                    {{echo}}
                }
                location /composite { auth_jwt_require $is_admin$arg_override; {{echo}} }
                location /arg { auth_jwt_require $arg_v; {{echo}} }
                location /parent {
                    auth_jwt_require $valid_iss;
                    {{echo}}
                    location /parent/child {
                        auth_jwt_require $is_admin error=403;
                        {{echo}}
                    }
                }
            }
            """);
        return Task.CompletedTask;
    }

    private static string Token(string iss, string role = "user") =>
        TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims("alice", new JsonObject { ["iss"] = iss, ["role"] = role }));

    private async Task<(int, string?)> GetAsync(string path, string token)
    {
        HttpReply reply = await Nginx.GetAsync(path, token);
        return (reply.Status, reply.Challenge);
    }

    private static (int, string?) Ok => (200, null);

    private static (int, string?) Unauthorized => (401, "Bearer realm=\"require\", error=\"invalid_token\"");

    private static (int, string?) Forbidden => (403, "Bearer realm=\"require\", error=\"insufficient_scope\"");

    [Test]
    public async Task Require_on_a_claim_map_passes_when_the_value_is_1()
    {
        Assert.That(await GetAsync("/iss", Token("good")), Is.EqualTo(Ok));
    }

    [Test]
    public async Task Require_fails_with_401_when_the_value_is_0()
    {
        Assert.That(await GetAsync("/iss", Token("bad")), Is.EqualTo(Unauthorized));
    }

    [Test]
    public async Task Require_with_error_403_fails_with_403()
    {
        Assert.That(await GetAsync("/iss-403", Token("bad")), Is.EqualTo(Forbidden));
        Assert.That(await GetAsync("/iss-403", Token("good")), Is.EqualTo(Ok));
    }

    [Test]
    public async Task Every_value_of_one_directive_must_pass()
    {
        Assert.That(await GetAsync("/two-values", Token("good", "admin")), Is.EqualTo(Ok));
        Assert.That(await GetAsync("/two-values", Token("good", "user")), Is.EqualTo(Unauthorized));
        Assert.That(await GetAsync("/two-values", Token("bad", "admin")), Is.EqualTo(Unauthorized));
    }

    [Test]
    public async Task Each_directive_fails_with_its_own_error_code()
    {
        Assert.That(await GetAsync("/two-directives", Token("good", "admin")), Is.EqualTo(Ok));
        Assert.That(await GetAsync("/two-directives", Token("bad", "admin")), Is.EqualTo(Unauthorized));
        Assert.That(await GetAsync("/two-directives", Token("good", "user")), Is.EqualTo(Forbidden));
    }

    [Test]
    public async Task Value_may_combine_variables()
    {
        Assert.That(await GetAsync("/composite", Token("x", "admin")), Is.EqualTo(Ok));
        Assert.That(await GetAsync("/composite?override=yes", Token("x", "user")), Is.EqualTo(Ok));
        Assert.That(await GetAsync("/composite", Token("x", "user")), Is.EqualTo(Unauthorized));
    }

    [TestCase("v=1", 200)]
    [TestCase("v=yes", 200)]
    [TestCase("v=00", 200)]
    [TestCase("v=0", 401)]
    [TestCase("v=", 401)]
    [TestCase("", 401)]
    public async Task Value_must_be_non_empty_and_not_0(string query, int status)
    {
        HttpReply reply = await Nginx.GetAsync("/arg?" + query, Keys.Token());

        Assert.That(reply.Status, Is.EqualTo(status), reply.ToString());
    }

    [Test]
    public async Task Require_of_the_parent_level_applies_before_the_child_level()
    {
        Assert.That(await GetAsync("/parent/child", Token("good", "admin")), Is.EqualTo(Ok));
        Assert.That(await GetAsync("/parent/child", Token("bad", "admin")), Is.EqualTo(Unauthorized));
        Assert.That(await GetAsync("/parent/child", Token("good", "user")), Is.EqualTo(Forbidden));
        Assert.That(await GetAsync("/parent/child", Token("bad", "user")), Is.EqualTo(Unauthorized));
    }

    [Test]
    public async Task Require_runs_only_for_a_verified_token()
    {
        string forged = TokenFactory.Sign(AlgVariant.Get("RS256").Stranger(), TokenFactory.Claims("x",
            new JsonObject { ["iss"] = "good", ["role"] = "admin" }));

        Assert.That(await GetAsync("/two-directives", forged), Is.EqualTo(Unauthorized));
    }

    [Test]
    public async Task Failed_require_is_logged_at_info()
    {
        await Nginx.GetAsync("/iss", Token("bad"));

        string line = Nginx.WaitForLogLine(TestLogMark, "auth_jwt: rejected: auth_jwt_require");
        Assert.That(line, Does.Contain("[info]"));
    }
}
