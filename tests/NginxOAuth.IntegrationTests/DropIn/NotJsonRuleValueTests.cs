using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NginxOAuth.IntegrationTests.Tests;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>
/// Bug: a $variable rule value that is not JSON gave 500 and an error line;
/// the variable may come from the client, who could cause them at will.
/// </summary>
[TestFixture]
public sealed class NotJsonRuleValueTests : NginxFixture
{
    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location /not-json {
                    auth_jwt "rules";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_require_claim iss eq $http_x_expected;
                    {{nginx.Echo("sub=$jwt_claim_sub")}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    [TestCase("good", TestName = "Expected_variable_that_is_a_bare_word_is_401")]
    [TestCase("{\"a\":", TestName = "Expected_variable_that_is_broken_JSON_is_401")]
    public async Task Expected_variable_that_is_not_JSON_is_401_with_an_info_line(string expected)
    {
        string token = TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims("alice", new JsonObject { ["iss"] = "good" }));
        HttpReply reply = await Nginx.GetAsync("/not-json", token, configure: r =>
            r.Headers.TryAddWithoutValidation("X-Expected", expected));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"rules\", error=\"invalid_token\""));
        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: claim ""iss"" failed operator ""eq"": the expected value is not JSON");
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain("[error]"));
    }
}
