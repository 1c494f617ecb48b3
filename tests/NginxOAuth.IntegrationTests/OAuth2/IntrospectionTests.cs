using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// auth_oauth2_token_introspect without a cache: the subrequest the IdP
/// receives, variables, claim_set, require, WWW-Authenticate, and every IdP
/// failure ending in 502 (an unusable answer) or 503 with Retry-After (no
/// answer) with an [error] line that names the cause.
/// </summary>
[TestFixture]
public sealed class IntrospectionTests : NginxFixture
{
    private const string ClientId = "my gateway";
    private const string ClientSecret = "s3cr:et&";

    private FakeIdp _idp = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        int closed = NginxInstance.NewPort(); // nothing listens there
        string echo = nginx.Echo("active=$oauth2_token_active sub=$oauth2_token_sub scope=$oauth2_token_scope "
            + "client=$oauth2_token_client_id exp=$oauth2_token_exp role=$oauth2_role groups=$oauth2_groups "
            + "new=$oauth2_token_new_token.");
        nginx.Start($$"""
            auth_oauth2_token_client_id "{{ClientId}}";
            auth_oauth2_token_client_secret "{{ClientSecret}}";
            auth_oauth2_token_claim_set $oauth2_role role;
            auth_oauth2_token_claim_set $oauth2_groups groups;
            map $oauth2_role $is_admin { admin 1; default 0; }

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect {
                    internal;
                    subrequest_output_buffer_size 128k;
                    proxy_read_timeout 60s;
                    proxy_pass {{_idp.BaseUrl}}/introspect;
                }
                # only for the IdP slower than the read timeout (it answers
                # after 3 s): the other locations wait long enough for a
                # loaded machine
                location = /_introspect_short {
                    internal;
                    proxy_read_timeout 1s;
                    proxy_pass {{_idp.BaseUrl}}/introspect;
                }
                location /short-timeout {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_introspect_short;
                    {{echo}}
                }
                location = /_down { internal; proxy_pass http://127.0.0.1:{{closed}}/introspect; }

                auth_oauth2_token_introspect_endpoint /_introspect;

                location /api { auth_oauth2_token_introspect on; {{echo}} }
                location = /_small {
                    internal;
                    subrequest_output_buffer_size 4k;
                    proxy_pass {{_idp.BaseUrl}}/introspect;
                }
                location /small {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_small;
                    {{echo}}
                }
                location /down {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_down;
                    {{echo}}
                }
                location /admin403 {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_require $is_admin error=403;
                    {{echo}}
                }
                location /admin401 {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_require $oauth2_token_sub $is_admin;
                    {{echo}}
                }
                location /www-off {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_www_authenticate off;
                    {{echo}}
                }
                location /www-custom {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_www_authenticate 'Bearer resource_metadata="http://$host/meta"';
                    {{echo}}
                }
                location /www-empty {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_www_authenticate $arg_none;
                    {{echo}}
                }
                location /writes {
                    auth_oauth2_token_introspect off;
                    limit_except GET { auth_oauth2_token_introspect on; }
                    {{echo}}
                }
                location /require-only {
                    auth_oauth2_token_require $is_admin;
                    {{echo}}
                }
                location /layered {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_require $is_admin error=403;
                    location /layered/inner {
                        auth_oauth2_token_require $arg_ok;
                        {{echo}}
                    }
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    [Test]
    public async Task Active_token_passes_and_fills_the_variables()
    {
        HttpReply reply = await Nginx.GetAsync("/api", "tok-alice");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Does.StartWith("active=1 sub=user-tok-alice scope=read write client=app-1 exp="));
        Assert.That(reply.Body, Does.Contain(" role=user groups=a,b new=."), "claim_set reads any member; arrays join with ','");
        string exp = reply.Body.Split("exp=")[1].Split(' ')[0];
        Assert.That(long.Parse(exp, System.Globalization.CultureInfo.InvariantCulture),
            Is.GreaterThan(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    }

    [Test]
    public async Task Introspection_is_a_form_POST_with_basic_client_authentication_and_nothing_from_the_client()
    {
        const string token = "tok-form+/=?&% ~";
        HttpReply reply = await Nginx.GetAsync("/api?x=1", token, configure: r =>
        {
            r.Headers.TryAddWithoutValidation("Cookie", "session=client-secret-cookie");
            r.Headers.TryAddWithoutValidation("X-Client-Header", "leak");
        });
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());

        IdpRequest call = _idp.Requests("/introspect").Last(r => r.Form.GetValueOrDefault("token") == token);
        Assert.That(call.Method, Is.EqualTo("POST"));
        Assert.That(call.Header("Content-Type"), Is.EqualTo("application/x-www-form-urlencoded"));
        Assert.That(call.Header("Content-Length"), Is.EqualTo(Encoding.UTF8.GetByteCount(call.Body).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        string basic = Convert.ToBase64String(Encoding.UTF8.GetBytes("my+gateway:s3cr%3Aet%26"));
        Assert.That(call.Header("Authorization"), Is.EqualTo("Basic " + basic), "RFC 6749 2.3.1: id and secret form-encoded first");
        Assert.That(call.Body, Does.EndWith("&token_type_hint=access_token"));
        Assert.That(call.Form["token_type_hint"], Is.EqualTo("access_token"));
        Assert.That(call.Header("Cookie"), Is.Null, "client headers never reach the IdP");
        Assert.That(call.Header("X-Client-Header"), Is.Null);
    }

    [Test]
    public async Task Inactive_token_is_401_with_invalid_token_challenge_logged_at_info()
    {
        HttpReply reply = await Nginx.GetAsync("/api", "inactive-1");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        string line = Nginx.WaitForLogLine(TestLogMark, "token is not active");
        Assert.That(line, Does.Contain("[info]"));
        Assert.That(line, Does.Not.Contain("inactive-1"), "the token is never logged");
    }

    [Test]
    public async Task Request_without_a_token_is_401_with_a_challenge_without_error_code()
    {
        HttpReply reply = await Nginx.GetAsync("/api");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer"), "RFC 6750 3.1: no error code when no token was sent");
        Assert.That(_idp.Requests("/introspect").Count(r => r.Form.GetValueOrDefault("token") == ""), Is.Zero);
    }

    [TestCase("Basic dXNlcjpwYXNz", TestName = "Basic_credentials_are_not_a_bearer_token")]
    [TestCase("Bearer", TestName = "Bearer_without_a_token_is_no_token")]
    [TestCase("Bearer    ", TestName = "Bearer_with_only_spaces_is_no_token")]
    [TestCase("Bearertok-x", TestName = "Bearer_without_a_space_is_no_token")]
    public async Task Malformed_authorization_is_401(string authorization)
    {
        HttpReply reply = await Nginx.GetAsync("/api", configure: r =>
            r.Headers.TryAddWithoutValidation("Authorization", authorization));

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer"));
    }

    [Test]
    public async Task Bearer_scheme_is_case_insensitive()
    {
        HttpReply reply = await Nginx.GetAsync("/api", configure: r =>
            r.Headers.TryAddWithoutValidation("Authorization", "bEaReR tok-case"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Does.Contain("sub=user-tok-case"));
    }

    [TestCase("err-1", "introspection \"/_introspect\" answered status 500", TestName = "IdP_answering_500_is_502")]
    [TestCase("garbage-1", "invalid JSON", TestName = "IdP_answering_garbage_is_502")]
    [TestCase("noactive-1", "\"active\" missing or not a boolean", TestName = "Response_without_active_is_502")]
    [TestCase("stractive-1", "\"active\" missing or not a boolean", TestName = "Response_with_string_active_is_502")]
    [TestCase("huge-1", "oversized response of", TestName = "Response_over_64_KiB_is_502")]
    [TestCase("empty-1", "empty response", TestName = "Empty_response_is_502")]
    public async Task Unusable_IdP_answer_is_502_with_an_error_line(string token, string logged)
    {
        HttpReply reply = await Nginx.GetAsync("/api", token);

        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        Assert.That(reply.Challenge, Is.Null);
        Assert.That(reply.Header("Retry-After"), Is.Empty);
        string line = Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*" + System.Text.RegularExpressions.Regex.Escape(logged));
        Assert.That(line, Does.Not.Contain(token));
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain(token), "the token is never logged");
    }

    [Test]
    public async Task IdP_slower_than_proxy_read_timeout_is_503_with_retry_after()
    {
        HttpReply reply = await Nginx.GetAsync("/short-timeout", "slow-1");

        Assert.That(reply.Status, Is.EqualTo(503), reply.ToString());
        Assert.That(reply.Header("Retry-After"), Is.Not.Empty);
        Assert.That(reply.Challenge, Is.Null);
        Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*introspection: \"/_introspect_short\" did not answer");
    }

    [Test]
    public async Task Response_larger_than_the_subrequest_buffer_is_502_not_a_dropped_connection()
    {
        HttpReply reply = await Nginx.GetAsync("/small", "huge-small");

        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*too big subrequest response");
        Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*introspection: the answer of \"/_small\" .*did not arrive whole");
    }

    [Test]
    public async Task IdP_that_is_down_is_503_with_retry_after_and_an_error_line()
    {
        HttpReply reply = await Nginx.GetAsync("/down", "tok-down");

        Assert.That(reply.Status, Is.EqualTo(503));
        Assert.That(reply.Header("Retry-After"), Is.Not.Empty);
        Nginx.WaitForLogLine(TestLogMark, "\\[error\\].*introspection: \"/_down\" did not answer");
    }

    [Test]
    public async Task Require_failing_with_error_403_is_403_with_insufficient_scope()
    {
        HttpReply denied = await Nginx.GetAsync("/admin403", "tok-bob");
        HttpReply allowed = await Nginx.GetAsync("/admin403", "tok-admin");

        Assert.That(denied.Status, Is.EqualTo(403));
        Assert.That(denied.Challenge, Is.EqualTo("Bearer error=\"insufficient_scope\""), "RFC 6750 3.1");
        Assert.That(allowed.Status, Is.EqualTo(200), allowed.ToString());
        Nginx.WaitForLogLine(TestLogMark, "\\[info\\].*auth_oauth2_token_require \"\\$is_admin\" is empty or \"0\"");
    }

    [Test]
    public async Task Require_failing_with_default_401_sends_the_challenge()
    {
        HttpReply denied = await Nginx.GetAsync("/admin401", "tok-carol");
        HttpReply allowed = await Nginx.GetAsync("/admin401", "tok-admin-2");

        Assert.That(denied.Status, Is.EqualTo(401));
        Assert.That(denied.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        Assert.That(allowed.Status, Is.EqualTo(200), allowed.ToString());
    }

    [Test]
    public async Task Require_checks_accumulate_across_levels_parent_first()
    {
        HttpReply both = await Nginx.GetAsync("/layered/inner?ok=1", "tok-admin-l1");
        HttpReply innerFails = await Nginx.GetAsync("/layered/inner", "tok-admin-l2");
        HttpReply outerFails = await Nginx.GetAsync("/layered/inner?ok=1", "tok-user-l3");

        Assert.That(both.Status, Is.EqualTo(200), both.ToString());
        Assert.That(innerFails.Status, Is.EqualTo(401), "the location's own check still runs");
        Assert.That(outerFails.Status, Is.EqualTo(403), "the inherited check runs first, with its error=");
    }

    [Test]
    public async Task Require_is_skipped_when_introspection_is_off()
    {
        HttpReply reply = await Nginx.GetAsync("/require-only");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
    }

    [Test]
    public async Task Www_authenticate_off_sends_no_challenge()
    {
        HttpReply reply = await Nginx.GetAsync("/www-off", "inactive-2");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.Null);
    }

    [Test]
    public async Task Www_authenticate_string_is_expanded_and_sent_as_is()
    {
        HttpReply noToken = await Nginx.GetAsync("/www-custom");
        HttpReply inactive = await Nginx.GetAsync("/www-custom", "inactive-3");

        Assert.That(noToken.Challenge, Is.EqualTo($"Bearer resource_metadata=\"http://127.0.0.1/meta\""));
        Assert.That(inactive.Challenge, Is.EqualTo(noToken.Challenge));
    }

    [Test]
    public async Task Www_authenticate_expanding_to_nothing_sends_no_challenge()
    {
        HttpReply reply = await Nginx.GetAsync("/www-empty", "inactive-4");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.Null);
    }

    [Test]
    public async Task Introspection_inside_limit_except_protects_only_other_methods()
    {
        HttpReply get = await Nginx.GetAsync("/writes");
        HttpReply post = await Nginx.SendAsync(HttpMethod.Post, "/writes");
        HttpReply postWithToken = await Nginx.SendAsync(HttpMethod.Post, "/writes", "tok-writer");

        Assert.That(get.Status, Is.EqualTo(200), get.ToString());
        Assert.That(post.Status, Is.EqualTo(401));
        Assert.That(postWithToken.Status, Is.EqualTo(200), postWithToken.ToString());
    }

    [Test]
    public async Task Concurrent_requests_keep_their_own_introspection_results()
    {
        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 60).Select(i =>
            Nginx.GetAsync("/api", i % 3 == 0 ? $"inactive-c{i}" : $"tok-c{i}")));

        for (int i = 0; i < replies.Length; i++)
        {
            if (i % 3 == 0)
            {
                Assert.That(replies[i].Status, Is.EqualTo(401), replies[i].ToString());
            }
            else
            {
                Assert.That(replies[i].Status, Is.EqualTo(200), replies[i].ToString());
                Assert.That(replies[i].Body, Does.Contain($"sub=user-tok-c{i} "));
            }
        }
    }
}
