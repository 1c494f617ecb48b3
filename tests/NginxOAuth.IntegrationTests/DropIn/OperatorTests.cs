using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tests;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>
/// The operators nginx-auth-jwt added in 0.11-0.14: match (regular
/// expressions with \A and \z anchors), any (intersect), and the "!" prefix
/// on every operator, which never turns an error into a pass.
/// </summary>
[TestFixture]
public sealed class OperatorTests : NginxFixture
{
    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "ops";
                auth_jwt_key_file keys.jwks;

                location /match-var { auth_jwt_require_claim name match $http_x_pattern; {{echo}} }
                location /not-match-var { auth_jwt_require_claim name !match $http_x_pattern; {{echo}} }
                location /match-iat { auth_jwt_require_claim iat match $http_x_pattern; {{echo}} }
                location /not-match-iat { auth_jwt_require_claim iat !match $http_x_pattern; {{echo}} }
                location /match-end { auth_jwt_require_claim name match 'Doe\z'; {{echo}} }
                location /match-end-miss { auth_jwt_require_claim name match 'John\z'; {{echo}} }
                location /match-anchored { auth_jwt_require_claim name match '\AJohn Doe\z'; {{echo}} }
                location /match-json { auth_jwt_require_claim name match 'json="^John"'; {{echo}} }
                location /match-sub { auth_jwt_require_claim sub match $http_x_pattern; {{echo}} }
                location /not-eq { auth_jwt_require_claim name !eq $http_x_expected; {{echo}} }
                location /not-in { auth_jwt_require_claim name !in $http_x_expected; {{echo}} }
                location /not-gt { auth_jwt_require_claim iat !gt $http_x_expected; {{echo}} }
                location /not-ge { auth_jwt_require_claim iat !ge $http_x_expected; {{echo}} }
                location /not-lt { auth_jwt_require_claim iat !lt $http_x_expected; {{echo}} }
                location /not-le { auth_jwt_require_claim iat !le $http_x_expected; {{echo}} }
                location /any { auth_jwt_require_claim roles any 'json=["admin","dev"]'; {{echo}} }
                location /not-any { auth_jwt_require_claim roles !any 'json=["admin"]'; {{echo}} }
                location /header-not-eq { auth_jwt_require_header alg !eq HS256; {{echo}} }
            }
            """);
        return Task.CompletedTask;
    }

    private static string Token(string sub = "alice") => TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims(sub,
        new JsonObject { ["name"] = "John Doe", ["iat"] = 1516239022, ["roles"] = new JsonArray("dev", "ops") }));

    private async Task<int> StatusAsync(string path, string? header = null, string? value = null, string? token = null)
    {
        HttpReply reply = await Nginx.GetAsync(path, token ?? Token(), configure: r =>
        {
            if (header is not null)
            {
                r.Headers.TryAddWithoutValidation(header, value);
            }
        });
        return reply.Status;
    }

    [TestCase("/match-var", "\"^John\"", 200, TestName = "Match_with_a_caret")]
    [TestCase("/match-var", "\"^Alice\"", 401, TestName = "Match_that_does_not_match_is_401")]
    [TestCase("/match-var", "\"John .+\"", 200, TestName = "Match_with_a_complex_pattern")]
    [TestCase("/match-var", "\"Doe\"", 200, TestName = "Match_finds_a_partial_match")]
    [TestCase("/not-match-var", "\"^Alice\"", 200, TestName = "Not_match_passes_when_it_does_not_match")]
    [TestCase("/not-match-var", "\"^John\"", 401, TestName = "Not_match_is_401_when_it_matches")]
    [TestCase("/match-iat", "\"^[0-9]+\"", 401, TestName = "Match_on_a_number_claim_is_401")]
    [TestCase("/not-match-iat", "\"^[0-9]+\"", 401, TestName = "Not_match_on_a_number_claim_is_401_too")]
    [TestCase("/not-match-var", "\"(unclosed\"", 401, TestName = "Not_match_with_a_broken_pattern_is_401")]
    [TestCase("/not-eq", "\"Not John Doe\"", 200, TestName = "Not_eq_passes_when_different")]
    [TestCase("/not-eq", "\"John Doe\"", 401, TestName = "Not_eq_is_401_when_equal")]
    [TestCase("/not-in", "[\"Alice\", \"Bob\"]", 200, TestName = "Not_in_passes_when_absent")]
    [TestCase("/not-in", "[\"John Doe\", \"Alice\"]", 401, TestName = "Not_in_is_401_when_present")]
    [TestCase("/not-gt", "9999999999", 200, TestName = "Not_gt_passes_when_not_greater")]
    [TestCase("/not-gt", "100", 401, TestName = "Not_gt_is_401_when_greater")]
    [TestCase("/not-gt", "\"x\"", 401, TestName = "Not_gt_with_a_string_is_an_error_not_a_pass")]
    [TestCase("/not-ge", "9999999999", 200, TestName = "Not_ge_passes_when_less")]
    [TestCase("/not-lt", "100", 200, TestName = "Not_lt_passes_when_not_less")]
    [TestCase("/not-le", "100", 200, TestName = "Not_le_passes_when_greater")]
    public async Task Operator_with_a_variable_value(string path, string value, int status)
    {
        string header = path.StartsWith("/not-eq") || path.StartsWith("/not-in") || path.StartsWith("/not-g")
            || path.StartsWith("/not-l") ? "X-Expected" : "X-Pattern";
        Assert.That(await StatusAsync(path, header, value), Is.EqualTo(status));
    }

    [TestCase("/match-end", 200, TestName = "Match_with_an_end_anchor")]
    [TestCase("/match-end-miss", 401, TestName = "Match_with_an_end_anchor_that_misses_is_401")]
    [TestCase("/match-anchored", 200, TestName = "Match_anchored_at_both_ends")]
    [TestCase("/match-json", 200, TestName = "Match_with_a_json_string_pattern")]
    [TestCase("/any", 200, TestName = "Any_passes_with_a_common_element")]
    [TestCase("/not-any", 200, TestName = "Not_any_passes_without_a_common_element")]
    [TestCase("/header-not-eq", 200, TestName = "Not_eq_on_a_header")]
    public async Task Operator_with_a_fixed_value(string path, int status)
    {
        Assert.That(await StatusAsync(path), Is.EqualTo(status));
    }

    [Test]
    public async Task Failed_match_is_logged_without_the_claim_value()
    {
        Assert.That(await StatusAsync("/not-match-var", "X-Pattern", "\"^John\""), Is.EqualTo(401));
        string line = Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: claim ""name"" failed operator ""!match""");
        Assert.That(line, Does.Not.Contain("John"));
    }

    [Test]
    public async Task Backtracking_pattern_on_a_long_claim_is_401()
    {
        string token = TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims(new string('a', 4000) + "!"));
        Assert.That(await StatusAsync("/match-sub", "X-Pattern", "\"^(a+)+\\\\z\"", token), Is.EqualTo(401));
    }
}

/// <summary>Operator mistakes that nginx -t refuses.</summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class OperatorConfigTests
{
    [TestCase("auth_jwt_require_claim name !invalid '\"test\"';", "unknown operator", TestName = "Unknown_negated_operator_is_refused")]
    [TestCase("auth_jwt_require_claim name match json=123;", "wrong type", TestName = "Match_with_a_json_number_is_refused")]
    [TestCase("auth_jwt_require_claim name match 'json={}';", "wrong type", TestName = "Match_with_a_json_object_is_refused")]
    [TestCase("auth_jwt_require_claim name match '(unclosed';", "invalid regular expression", TestName = "Match_pattern_that_does_not_compile_is_refused")]
    [TestCase("auth_jwt_require_claim roles !any json=5;", "wrong type", TestName = "Not_any_with_a_number_is_refused")]
    [TestCase("auth_jwt_www_authenticate on; auth_jwt_www_authenticate off;", "is duplicate", TestName = "Www_authenticate_twice_at_one_level_is_refused")]
    public void Refused(string directives, string message)
    {
        using var nginx = new NginxInstance("operators");
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        nginx.Configure($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location / {
                    auth_jwt "x";
                    auth_jwt_key_file keys.jwks;
                    {{directives}}
                    {{nginx.Echo("x")}}
                }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain(message));
    }
}
