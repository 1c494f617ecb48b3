using System.Collections.Generic;
using System.Net.Http;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>auth_jwt_require_claim and auth_jwt_require_header: every operator and every value form.</summary>
[TestFixture]
public sealed class RuleTests : NginxFixture
{
    private static readonly string[] Operators = ["eq", "ne", "gt", "ge", "lt", "le", "intersect", "nintersect", "in", "nin"];

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        var ops = new StringBuilder();
        foreach (string op in Operators)
        {
            // the expected value comes from a request header, parsed as JSON per request
            ops.AppendLine($"location /claim/{op} {{ auth_jwt_require_claim c {op} $http_x_expected; {echo} }}");
            ops.AppendLine($"location /header/{op} {{ auth_jwt_require_header h {op} $http_x_expected; {echo} }}");
        }

        nginx.Start($$"""
            map $request_method $required_roles {
                GET     '["reader","writer"]';
                default '["writer"]';
            }

            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "rules";
                auth_jwt_key_file keys.jwks;

            {{ops}}
                location /plain-string { auth_jwt_require_claim iss eq good; {{echo}} }
                location /plain-number { auth_jwt_require_claim num eq 123; {{echo}} }
                location /json-number { auth_jwt_require_claim iat eq json=1697461112; {{echo}} }
                location /json-array {
                    auth_jwt_require_claim roles intersect 'json=["SERVICE","ADMINISTRATORS"]';
                    {{echo}}
                }
                location /json-object { auth_jwt_require_claim cnf eq 'json={"a":1,"b":[true,null]}'; {{echo}} }
                location /set-variable {
                    set $expected_iss '"abc"';
                    auth_jwt_require_claim iss eq $expected_iss;
                    {{echo}}
                }
                location /map-variable {
                    auth_jwt_require_claim roles intersect $required_roles;
                    {{echo}}
                }
                location /and {
                    auth_jwt_require_claim iss eq good;
                    auth_jwt_require_claim aud in 'json=["api","web"]';
                    {{echo}}
                }
                location /parent {
                    auth_jwt_require_claim iss eq good;
                    {{echo}}
                    location /parent/child {
                        auth_jwt_require_claim aud eq api;
                        {{echo}}
                    }
                }
                location /raw-variable { auth_jwt_require_claim iss eq $arg_v; {{echo}} }
                location /missing-ne { auth_jwt_require_claim absent ne x; {{echo}} }
                location /missing-nin { auth_jwt_require_claim absent nin 'json=["x"]'; {{echo}} }
                location /header-alg { auth_jwt_require_header alg eq RS256; {{echo}} }
                location /header-typ { auth_jwt_require_header typ eq JWT; {{echo}} }
                location /header-kid { auth_jwt_require_header kid in 'json=["RS256-0","ES256-0"]'; {{echo}} }
                location /header-none {
                    auth_jwt_require_header alg in 'json=["none","RS256"]';
                    {{echo}}
                }
                location /header-none-nosig {
                    auth_jwt_validate_sig off;
                    auth_jwt_require_header alg eq none;
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    public static IEnumerable<TestCaseData> OperatorCases()
    {
        // claim value, operator, expected value (JSON), passes
        (string, string, string, bool)[] cases =
        [
            ("\"abc\"", "eq", "\"abc\"", true),
            ("\"abc\"", "eq", "\"abd\"", false),
            ("\"abc\"", "eq", "\"ABC\"", false),
            ("42", "eq", "42", true),
            ("42", "eq", "\"42\"", false),
            ("1", "eq", "1.0", false),
            ("1.5", "eq", "1.5", true),
            ("true", "eq", "true", true),
            ("true", "eq", "false", false),
            ("null", "eq", "null", true),
            ("[1,2]", "eq", "[1,2]", true),
            ("[1,2]", "eq", "[2,1]", false),
            ("{\"a\":1,\"b\":2}", "eq", "{\"b\":2,\"a\":1}", true),
            ("{\"a\":1}", "eq", "{\"a\":1,\"b\":2}", false),
            ("\"abc\"", "ne", "\"abd\"", true),
            ("\"abc\"", "ne", "\"abc\"", false),
            ("5", "gt", "3", true),
            ("5", "gt", "5", false),
            ("3", "gt", "5", false),
            ("1.5", "gt", "1", true),
            ("\"5\"", "gt", "3", false),
            ("5", "ge", "5", true),
            ("4", "ge", "5", false),
            ("3", "lt", "5", true),
            ("5", "lt", "5", false),
            ("5", "le", "5", true),
            ("6", "le", "5", false),
            ("1697461112", "lt", "1697461113", true),
            ("[\"a\",\"b\"]", "intersect", "[\"b\",\"c\"]", true),
            ("[\"a\"]", "intersect", "[\"b\",\"c\"]", false),
            ("\"a\"", "intersect", "[\"a\",\"b\"]", true),
            ("[]", "intersect", "[\"a\"]", false),
            ("[\"a\"]", "intersect", "\"a\"", false),
            ("[\"a\"]", "nintersect", "[\"b\"]", true),
            ("[\"a\",\"b\"]", "nintersect", "[\"b\"]", false),
            ("[\"a\"]", "nintersect", "\"b\"", false),
            ("\"a\"", "in", "[\"a\",\"b\"]", true),
            ("\"c\"", "in", "[\"a\",\"b\"]", false),
            ("\"k\"", "in", "{\"k\":1}", true),
            ("\"z\"", "in", "{\"k\":1}", false),
            ("2", "in", "[1,2,3]", true),
            ("\"c\"", "nin", "[\"a\",\"b\"]", true),
            ("\"a\"", "nin", "[\"a\",\"b\"]", false),
        ];

        foreach ((string claim, string op, string expected, bool pass) in cases)
        {
            yield return new TestCaseData(claim, op, expected, pass)
                .SetName($"Claim {claim} {op} {expected} {(pass ? "passes" : "fails")}");
        }
    }

    private async Task<HttpReply> GetWithExpectedAsync(string path, string token, string expected) =>
        await Nginx.GetAsync(path, token, configure: r => r.Headers.TryAddWithoutValidation("X-Expected", expected));

    private static string Token(JsonObject? extra = null, JsonObject? header = null) =>
        TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims("alice", extra), header);

    private static void AssertRejected(HttpReply reply) =>
        Assert.That((reply.Status, reply.Challenge),
            Is.EqualTo((401, (string?)"Bearer realm=\"rules\", error=\"invalid_token\"")), reply.ToString());

    [TestCaseSource(nameof(OperatorCases))]
    public async Task Claim_operator(string claim, string op, string expected, bool pass)
    {
        string token = Token(new JsonObject { ["c"] = JsonNode.Parse(claim) });

        HttpReply reply = await GetWithExpectedAsync($"/claim/{op}", token, expected);

        if (pass)
        {
            Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        }
        else
        {
            AssertRejected(reply);
        }
    }

    [TestCase("eq", "\"v1\"", true)]
    [TestCase("eq", "\"v2\"", false)]
    [TestCase("ne", "\"v2\"", true)]
    [TestCase("in", "[\"v0\",\"v1\"]", true)]
    [TestCase("nin", "[\"v0\",\"v1\"]", false)]
    [TestCase("intersect", "[\"v1\"]", true)]
    [TestCase("nintersect", "[\"v1\"]", false)]
    public async Task Header_operator(string op, string expected, bool pass)
    {
        string token = Token(header: new JsonObject { ["h"] = "v1" });

        HttpReply reply = await GetWithExpectedAsync($"/header/{op}", token, expected);

        Assert.That(reply.Status, Is.EqualTo(pass ? 200 : 401), reply.ToString());
    }

    [TestCase("gt", "5", true)]
    [TestCase("ge", "7", true)]
    [TestCase("lt", "7", false)]
    [TestCase("le", "7", true)]
    public async Task Header_operator_on_numbers(string op, string expected, bool pass)
    {
        string token = Token(header: new JsonObject { ["h"] = 7 });

        HttpReply reply = await GetWithExpectedAsync($"/header/{op}", token, expected);

        Assert.That(reply.Status, Is.EqualTo(pass ? 200 : 401), reply.ToString());
    }

    [TestCase("eq")]
    [TestCase("ne")]
    [TestCase("nin")]
    [TestCase("nintersect")]
    public async Task Missing_claim_fails_every_operator_negated_ones_too(string op)
    {
        HttpReply reply = await GetWithExpectedAsync($"/claim/{op}", Token(), "[\"x\"]");

        AssertRejected(reply);
    }

    [Test]
    public async Task Missing_claim_fails_static_negated_rules()
    {
        AssertRejected(await Nginx.GetAsync("/missing-ne", Token()));
        AssertRejected(await Nginx.GetAsync("/missing-nin", Token()));
    }

    [Test]
    public async Task Empty_expected_variable_fails_the_rule()
    {
        AssertRejected(await Nginx.GetAsync("/claim/ne", Token(new JsonObject { ["c"] = "a" })));
    }

    [Test]
    public async Task Expected_variable_that_is_not_JSON_gives_401_and_an_info_line()
    {
        HttpReply reply = await Nginx.GetAsync("/raw-variable?v=abc", Token(new JsonObject { ["iss"] = "abc" }));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: claim ""iss"" failed operator ""eq"": the expected value is not JSON");
    }

    [Test]
    public async Task Failed_rule_is_logged_at_info_with_the_claim_name_and_operator()
    {
        await Nginx.GetAsync("/plain-string", Token(new JsonObject { ["iss"] = "evil-issuer" }));

        string line = Nginx.WaitForLogLine(TestLogMark, "auth_jwt: rejected: claim");
        Assert.That(line, Does.Contain("[info]"));
        Assert.That(line, Does.Contain("claim \"iss\" failed operator \"eq\""));
    }

    [Test]
    public async Task Plain_string_value_is_compared_as_a_JSON_string()
    {
        Assert.That((await Nginx.GetAsync("/plain-string", Token(new JsonObject { ["iss"] = "good" }))).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/plain-string", Token(new JsonObject { ["iss"] = "bad" })));
        Assert.That((await Nginx.GetAsync("/plain-number", Token(new JsonObject { ["num"] = "123" }))).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/plain-number", Token(new JsonObject { ["num"] = 123 })));
    }

    [Test]
    public async Task Json_value_is_compared_as_JSON()
    {
        Assert.That((await Nginx.GetAsync("/json-number", Token(new JsonObject { ["iat"] = 1697461112 }))).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/json-number", Token(new JsonObject { ["iat"] = "1697461112" })));
        Assert.That((await Nginx.GetAsync("/json-array", Token(new JsonObject { ["roles"] = new JsonArray("USER", "SERVICE") }))).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/json-array", Token(new JsonObject { ["roles"] = new JsonArray("USER") })));
        JsonNode cnf = JsonNode.Parse("{\"b\":[true,null],\"a\":1}")!;
        Assert.That((await Nginx.GetAsync("/json-object", Token(new JsonObject { ["cnf"] = cnf }))).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Value_from_set_variable_is_parsed_as_JSON()
    {
        Assert.That((await Nginx.GetAsync("/set-variable", Token(new JsonObject { ["iss"] = "abc" }))).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/set-variable", Token(new JsonObject { ["iss"] = "abcd" })));
    }

    [Test]
    public async Task Value_from_map_variable_follows_the_request()
    {
        string reader = Token(new JsonObject { ["roles"] = new JsonArray("reader") });

        HttpReply get = await Nginx.GetAsync("/map-variable", reader);
        HttpReply post = await Nginx.SendAsync(HttpMethod.Post, "/map-variable", reader);

        Assert.That(get.Status, Is.EqualTo(200), get.ToString());
        AssertRejected(post);
    }

    [Test]
    public async Task Several_rules_must_all_pass()
    {
        Assert.That((await Nginx.GetAsync("/and", Token(new JsonObject { ["iss"] = "good", ["aud"] = "web" }))).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/and", Token(new JsonObject { ["iss"] = "good", ["aud"] = "other" })));
        AssertRejected(await Nginx.GetAsync("/and", Token(new JsonObject { ["iss"] = "bad", ["aud"] = "web" })));
    }

    [Test]
    public async Task Rules_of_the_parent_level_apply_in_nested_locations()
    {
        Assert.That((await Nginx.GetAsync("/parent/child", Token(new JsonObject { ["iss"] = "good", ["aud"] = "api" }))).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/parent/child", Token(new JsonObject { ["iss"] = "bad", ["aud"] = "api" })));
        AssertRejected(await Nginx.GetAsync("/parent/child", Token(new JsonObject { ["iss"] = "good", ["aud"] = "web" })));
    }

    [Test]
    public async Task Header_rule_checks_the_JOSE_header()
    {
        Assert.That((await Nginx.GetAsync("/header-alg", Token())).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/header-alg", TokenFactory.Sign(Keys.Es256)));
        Assert.That((await Nginx.GetAsync("/header-typ", Token())).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/header-typ", Token(header: new JsonObject { ["typ"] = "at+jwt" })));
        Assert.That((await Nginx.GetAsync("/header-kid", TokenFactory.Sign(Keys.Es256))).Status, Is.EqualTo(200));
        AssertRejected(await Nginx.GetAsync("/header-kid", TokenFactory.Sign(Keys.Hs256)));
    }

    [Test]
    public async Task Header_rule_admitting_alg_none_never_lets_an_unsigned_token_pass()
    {
        // nginx-auth-jwt accepts "none" when such a rule passes; this module never does
        string unsigned = TokenFactory.Unsigned(TokenFactory.Claims("mallory"));

        AssertRejected(await Nginx.GetAsync("/header-none", unsigned));
        AssertRejected(await Nginx.GetAsync("/header-none-nosig", unsigned));
        Assert.That((await Nginx.GetAsync("/header-none", Token())).Status, Is.EqualTo(200), "a signed RS256 token still passes");
    }
}
