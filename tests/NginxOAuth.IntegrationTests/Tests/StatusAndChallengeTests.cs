using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>auth_jwt itself: where the token comes from, status codes and WWW-Authenticate.</summary>
[TestFixture]
public sealed class StatusAndChallengeTests : NginxFixture
{
    private int _inheritPort;

    protected override Task StartNginx(NginxInstance nginx)
    {
        _inheritPort = NginxInstance.NewPort();
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};

                location /p {
                    auth_jwt "closed site";
                    auth_jwt_key_file keys.jwks;
                    {{echo}}
                }

                location /quoted {
                    auth_jwt "say \"hi\" \\ bye";
                    auth_jwt_key_file keys.jwks;
                    {{echo}}
                }

                location /realm-variable {
                    auth_jwt "realm of $arg_tenant";
                    auth_jwt_key_file keys.jwks;
                    {{echo}}
                }

                location /cookie {
                    auth_jwt "cookie" token=$cookie_auth_token;
                    auth_jwt_key_file keys.jwks;
                    {{echo}}
                }

                location /query {
                    auth_jwt "query" token=$arg_access_token;
                    auth_jwt_key_file keys.jwks;
                    {{echo}}
                }

                location /forbidden {
                    auth_jwt "scoped";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_require $arg_grant error=403;
                    {{echo}}
                }

                location /teapot {
                    auth_jwt "teapot";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_require $arg_grant error=418;
                    {{echo}}
                }

                location /if-block {
                    auth_jwt "if";
                    auth_jwt_key_file keys.jwks;
                    if ($arg_debug) {
                        set $debug 1;
                    }
                    {{echo}}
                }

                location /nokeys {
                    auth_jwt "no keys";
                    {{echo}}
                }

                location /nosig {
                    auth_jwt "no signature check";
                    auth_jwt_validate_sig off;
                    {{echo}}
                }
            }

            server {
                listen 127.0.0.1:{{_inheritPort}};
                auth_jwt "server level";
                auth_jwt_key_file keys.jwks;

                location /inherit {
                    {{echo}}
                }

                location /open {
                    auth_jwt off;
                    {{nginx.Echo("open sub=$jwt_claim_sub")}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    [Test]
    public async Task Valid_bearer_token_is_accepted_without_a_challenge()
    {
        HttpReply reply = await Nginx.GetAsync("/p", Keys.Token("alice"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=alice"));
        Assert.That(reply.Challenges, Is.Empty);
    }

    [Test]
    public async Task Missing_token_gets_401_with_the_realm_and_no_error()
    {
        HttpReply reply = await Nginx.GetAsync("/p");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"closed site\""));
    }

    [TestCase("Basic YWxpY2U6c2VjcmV0")]
    [TestCase("Bearer")]
    [TestCase("Bearer    ")]
    [TestCase("Bearerxyz")]
    [TestCase("Token abc.def.ghi")]
    public async Task Authorization_without_a_bearer_token_counts_as_missing(string authorization)
    {
        HttpReply reply = await Nginx.GetAsync("/p",
            configure: r => r.Headers.TryAddWithoutValidation("Authorization", authorization));

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"closed site\""));
    }

    [TestCase("bearer")]
    [TestCase("BEARER")]
    [TestCase("Bearer  ")]
    public async Task Bearer_scheme_is_case_insensitive_and_spaces_around_the_token_are_ignored(string scheme)
    {
        string token = Keys.Token("case");
        HttpReply reply = await Nginx.GetAsync("/p",
            configure: r => r.Headers.TryAddWithoutValidation("Authorization", scheme + " " + token + "  "));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
    }

    [Test]
    public async Task Token_signed_by_an_unknown_key_gets_401_with_invalid_token()
    {
        string token = TokenFactory.Sign(AlgVariant.Get("RS256").Stranger());

        HttpReply reply = await Nginx.GetAsync("/p", token);

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"closed site\", error=\"invalid_token\""));
    }

    [TestCase("abc")]
    [TestCase("a.b.c")]
    [TestCase("a.b")]
    [TestCase("a.b.c.d")]
    [TestCase("....")]
    [TestCase("eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln")]
    [TestCase("eyJhbGciOiJSUzI1NiJ9.e30.!!!")]
    [TestCase("eyJhbGciOiJSUzI1NiJ9..")]
    [TestCase("W10.W10.c2ln")]
    public async Task Malformed_token_gets_401_with_invalid_token(string token)
    {
        HttpReply reply = await Nginx.GetAsync("/p", token);

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"closed site\", error=\"invalid_token\""));
    }

    [Test]
    public async Task Realm_quotes_and_backslashes_are_escaped_in_the_challenge()
    {
        HttpReply reply = await Nginx.GetAsync("/quoted");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"say \\\"hi\\\" \\\\ bye\""));
    }

    [Test]
    public async Task Realm_can_hold_variables()
    {
        HttpReply reply = await Nginx.GetAsync("/realm-variable?tenant=acme");

        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"realm of acme\""));
    }

    [Test]
    public async Task Token_is_read_from_the_variable_named_by_token_parameter()
    {
        string token = Keys.Token("cookie-user");

        HttpReply cookie = await Nginx.GetAsync("/cookie",
            configure: r => r.Headers.Add("Cookie", "other=1; auth_token=" + token));
        HttpReply query = await Nginx.GetAsync("/query?x=1&access_token=" + Keys.Token("query-user"));

        Assert.That(cookie.Status, Is.EqualTo(200), cookie.ToString());
        Assert.That(cookie.Body, Is.EqualTo("sub=cookie-user"));
        Assert.That(query.Status, Is.EqualTo(200), query.ToString());
        Assert.That(query.Body, Is.EqualTo("sub=query-user"));
    }

    [Test]
    public async Task Authorization_header_is_ignored_when_token_parameter_is_set()
    {
        HttpReply reply = await Nginx.GetAsync("/cookie", Keys.Token());

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"cookie\""));
    }

    [Test]
    public async Task Empty_token_variable_counts_as_missing()
    {
        HttpReply reply = await Nginx.GetAsync("/query?access_token=");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"query\""));
    }

    [Test]
    public async Task Auth_jwt_is_inherited_from_the_server_level()
    {
        HttpReply without = await Nginx.GetAsync("/inherit", port: _inheritPort);
        HttpReply with = await Nginx.GetAsync("/inherit", Keys.Token("bob"), port: _inheritPort);

        Assert.That(without.Status, Is.EqualTo(401));
        Assert.That(without.Challenge, Is.EqualTo("Bearer realm=\"server level\""));
        Assert.That(with.Status, Is.EqualTo(200), with.ToString());
        Assert.That(with.Body, Is.EqualTo("sub=bob"));
    }

    [Test]
    public async Task Auth_jwt_off_cancels_the_inherited_check()
    {
        HttpReply without = await Nginx.GetAsync("/open", port: _inheritPort);
        HttpReply with = await Nginx.GetAsync("/open", Keys.Token("bob"), port: _inheritPort);

        Assert.That(without.Status, Is.EqualTo(200), without.ToString());
        Assert.That(without.Body, Is.EqualTo("open sub="));
        Assert.That(with.Body, Is.EqualTo("open sub="), "no claims where auth_jwt is off");
    }

    [Test]
    public async Task Matching_if_block_inside_a_protected_location_stays_protected()
    {
        HttpReply without = await Nginx.GetAsync("/if-block?debug=1");
        HttpReply with = await Nginx.GetAsync("/if-block?debug=1", Keys.Token("in-if"));

        Assert.That(without.Status, Is.EqualTo(401));
        Assert.That(without.Challenge, Is.EqualTo("Bearer realm=\"if\""));
        Assert.That((with.Status, with.Body), Is.EqualTo((200, "sub=in-if")));
    }

    [Test]
    public async Task Failing_require_with_error_403_gets_403_and_insufficient_scope()
    {
        HttpReply denied = await Nginx.GetAsync("/forbidden", Keys.Token());
        HttpReply granted = await Nginx.GetAsync("/forbidden?grant=1", Keys.Token());

        Assert.That(denied.Status, Is.EqualTo(403));
        Assert.That(denied.Challenge, Is.EqualTo("Bearer realm=\"scoped\", error=\"insufficient_scope\""));
        Assert.That(granted.Status, Is.EqualTo(200), granted.ToString());
    }

    [Test]
    public async Task Invalid_token_still_gets_401_where_require_has_error_403()
    {
        HttpReply reply = await Nginx.GetAsync("/forbidden?grant=1", TokenFactory.Tampered(Keys.Token()));

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"scoped\", error=\"invalid_token\""));
    }

    [Test]
    public async Task Require_error_code_other_than_401_and_403_is_returned_as_is()
    {
        HttpReply reply = await Nginx.GetAsync("/teapot", Keys.Token());

        Assert.That(reply.Status, Is.EqualTo(418));
        Assert.That(reply.Challenges, Is.Empty);
    }

    [Test]
    public async Task No_keys_configured_gives_500_and_an_error_log_line()
    {
        HttpReply reply = await Nginx.GetAsync("/nokeys", Keys.Token());

        Assert.That(reply.Status, Is.EqualTo(500));
        Assert.That(reply.Challenges, Is.Empty);
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: .*no keys");
    }

    [Test]
    public async Task Validate_sig_off_accepts_a_token_with_any_signature()
    {
        string token = TokenFactory.Sign(AlgVariant.Get("ES256").Stranger(), TokenFactory.Claims("unchecked"));

        HttpReply reply = await Nginx.GetAsync("/nosig", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=unchecked"));
    }

    [TestCase("/p", "none")]
    [TestCase("/nosig", "none")]
    [TestCase("/p", "None")]
    [TestCase("/p", "NONE")]
    [TestCase("/p", "")]
    [TestCase("/p", null)]
    public async Task Unsigned_token_never_passes(string path, string? alg)
    {
        // "none" is refused everywhere; other unsigned forms ("None", "",
        // no alg) are not on the allow-list, checked while signatures are
        string token = alg is null
            ? TokenFactory.Encode("{\"typ\":\"JWT\"}") + "." + TokenFactory.Encode(TokenFactory.Json(TokenFactory.Claims())) + "."
            : TokenFactory.Unsigned(alg: alg);

        HttpReply reply = await Nginx.GetAsync(path, token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Does.EndWith("error=\"invalid_token\""));
    }

    [Test]
    public async Task Token_with_a_crit_header_is_rejected()
    {
        string token = TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims("x"),
            new JsonObject { ["crit"] = new JsonArray("b64"), ["b64"] = true });

        HttpReply reply = await Nginx.GetAsync("/p", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: unsupported crit header");
    }

    [Test]
    public async Task Validate_sig_off_skips_the_alg_allow_list_but_never_accepts_none()
    {
        // docs/DIRECTIVES.md, auth_jwt_validate_sig: with off, alg is not
        // checked against the supported list; "none" and crit still are
        HttpReply other = await Nginx.GetAsync("/nosig", TokenFactory.Unsigned(TokenFactory.Claims("x"), alg: "XS999"));
        HttpReply none = await Nginx.GetAsync("/nosig", TokenFactory.Unsigned(TokenFactory.Claims("x"), alg: "none"));
        string crit = TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims("x"),
            new JsonObject { ["crit"] = new JsonArray("exp"), ["exp"] = 1 });
        HttpReply critReply = await Nginx.GetAsync("/nosig", crit);

        Assert.That(other.Status, Is.EqualTo(200), other.ToString());
        Assert.That(none.Status, Is.EqualTo(401));
        Assert.That(critReply.Status, Is.EqualTo(401));
    }

    [Test]
    public async Task Token_with_alg_none_and_a_valid_looking_signature_never_passes()
    {
        string signed = Keys.Token();
        string header = TokenFactory.Encode(TokenFactory.Json(new JsonObject { ["alg"] = "none", ["kid"] = Keys.Rs256.Kid }));
        string token = header + signed[signed.IndexOf('.')..];

        HttpReply onKeys = await Nginx.GetAsync("/p", token);
        HttpReply onNoSig = await Nginx.GetAsync("/nosig", token);

        Assert.That(new[] { onKeys.Status, onNoSig.Status }, Is.All.EqualTo(401));
    }

    [Test]
    public async Task Rejection_is_logged_at_info_with_the_reason_and_never_the_token()
    {
        string token = TokenFactory.Sign(AlgVariant.Get("RS256").Stranger(), TokenFactory.Claims("secret-subject"));

        HttpReply reply = await Nginx.GetAsync("/p", token);

        Assert.That(reply.Status, Is.EqualTo(401));
        string line = Nginx.WaitForLogLine(TestLogMark, @"auth_jwt: rejected");
        Assert.That(line, Does.Contain("[info]"));
        Assert.That(line, Does.Contain("bad signature"));
        string log = Nginx.ErrorLogSince(TestLogMark);
        foreach (string part in token.Split('.'))
        {
            Assert.That(log, Does.Not.Contain(part), "the log must not hold any part of the token");
        }

        Assert.That(log, Does.Not.Contain("secret-subject"), "the log must not hold claim values");
    }

    [Test]
    public async Task Missing_token_is_logged_at_info()
    {
        await Nginx.GetAsync("/p");

        string line = Nginx.WaitForLogLine(TestLogMark, "auth_jwt: no token");
        Assert.That(line, Does.Contain("[info]"));
    }

    [Test]
    public async Task Other_methods_are_checked_too()
    {
        HttpReply post = await Nginx.SendAsync(HttpMethod.Post, "/p");
        HttpReply head = await Nginx.SendAsync(HttpMethod.Head, "/p", Keys.Token());

        Assert.That(post.Status, Is.EqualTo(401));
        Assert.That(head.Status, Is.EqualTo(200));
    }
}
