using System;
using System.Linq;
using System.Net.Http;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>auth_jwt_key_request: keys fetched by an in-memory subrequest from a fake key server.</summary>
[TestFixture]
public sealed class KeyRequestTests : NginxFixture
{
    private static readonly SigningKey JwksKey = AlgVariant.Get("RS256").Key(0);
    private static readonly SigningKey KeyvalKey = AlgVariant.Get("ES256").Key(0);
    private static readonly SigningKey SecondKey = AlgVariant.Get("ES384").Key(0);
    private static readonly SigningKey FileKey = AlgVariant.Get("EdDSA-Ed25519").Key(0);
    private static readonly SigningKey KeyA = AlgVariant.Get("PS256").Key(1);
    private static readonly SigningKey KeyB = AlgVariant.Get("ES512").Key(1);

    private FakeHttpServer _keys = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _keys = await FakeHttpServer.StartAsync();
        _keys.Set("/jwks", FakeResponse.Json(TokenFactory.Jwks(JwksKey)));
        _keys.Set("/keyval", FakeResponse.Json(TokenFactory.Keyval(KeyvalKey)));
        _keys.Set("/second", FakeResponse.Json(TokenFactory.Jwks(SecondKey)));
        _keys.Set("/a", FakeResponse.Json(TokenFactory.Jwks(KeyA)));
        _keys.Set("/b", FakeResponse.Json(TokenFactory.Jwks(KeyB)));
        _keys.Set("/encoded", FakeResponse.Compressed(TokenFactory.Jwks(JwksKey)));
        _keys.Set("/slow", FakeResponse.Delayed(TimeSpan.FromSeconds(4), TokenFactory.Jwks(JwksKey)));
        _keys.Set("/hanging", FakeResponse.Delayed(TimeSpan.FromSeconds(60), TokenFactory.Jwks(JwksKey)));
        _keys.Set("/big", FakeResponse.Json(TokenFactory.Jwks(JwksKey)[..^2] + "," + string.Join(",",
            Enumerable.Range(0, 200).Select(i => TokenFactory.Json(AlgVariant.Get("RS256").Key(0).Jwk(kid: $"pad-{i}")))) + "]}"));
        nginx.WriteFile("file.jwks", TokenFactory.Jwks(FileKey));

        int closed = NginxInstance.NewPort(); // nothing listens there
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "keys";

                location /jwks { auth_jwt_key_request /_keys/jwks; {{echo}} }
                location /jwks-uncached { auth_jwt_key_request /_keys/jwks; auth_jwt_key_cache 0; {{echo}} }
                location /keyval { auth_jwt_key_request /_keys/keyval keyval; {{echo}} }
                location /explicit-jwks { auth_jwt_key_request /_keys/jwks jwks; {{echo}} }
                location /two {
                    auth_jwt_key_request /_keys/jwks;
                    auth_jwt_key_request /_keys/second;
                    {{echo}}
                }
                location /three {
                    auth_jwt_key_request /_keys/jwks;
                    auth_jwt_key_request /_keys/second;
                    auth_jwt_key_request /_keys/keyval keyval;
                    {{echo}}
                }
                location /with-args { auth_jwt_key_request /_keys/a?tenant=$arg_tenant&v=1; {{echo}} }
                location /mixed {
                    auth_jwt_key_file file.jwks;
                    auth_jwt_key_request /_keys/jwks;
                    {{echo}}
                }
                location /mixed-failing {
                    auth_jwt_key_file file.jwks;
                    auth_jwt_key_request /_keys/status-$arg_status;
                    {{echo}}
                }
                location /status { auth_jwt_key_request /_keys/status-$arg_status; {{echo}} }
                location /body { auth_jwt_key_request /_keys/body-$arg_case; {{echo}} }
                location /encoded { auth_jwt_key_request /_keys/encoded; {{echo}} }
                location /slow { auth_jwt_key_request /_slow; {{echo}} }
                location /hanging { auth_jwt_key_request /_hanging; {{echo}} }
                location /down { auth_jwt_key_request /_down; {{echo}} }
                location /big { auth_jwt_key_request /_keys/big; {{echo}} }
                location /variable { auth_jwt_key_request /_keys/$arg_set; {{echo}} }
                location /nosig {
                    auth_jwt_validate_sig off;
                    auth_jwt_key_request /_keys/jwks;
                    {{echo}}
                }
                location /preaccess {
                    auth_jwt_phase preaccess;
                    auth_jwt_key_request /_keys/jwks;
                    {{echo}}
                }
                location /gate {
                    auth_jwt off;
                    auth_request /_check;
                    {{nginx.Echo("gate")}}
                }
                location = /_check {
                    internal;
                    auth_jwt_phase preaccess;
                    auth_jwt_key_request /_keys/jwks;
                    {{nginx.Echo("checked")}}
                }

                location /_keys/ {
                    internal;
                    proxy_pass {{_keys.BaseUrl}}/;
                    proxy_read_timeout 5s;
                    subrequest_output_buffer_size 64k;
                }

                location = /_slow {
                    internal;
                    proxy_pass {{_keys.BaseUrl}}/slow;
                    proxy_read_timeout 1s;
                    subrequest_output_buffer_size 64k;
                }

                location = /_hanging {
                    internal;
                    proxy_pass {{_keys.BaseUrl}}/hanging;
                    proxy_read_timeout 5s;
                    subrequest_output_buffer_size 64k;
                }

                location = /_down {
                    internal;
                    proxy_pass http://127.0.0.1:{{closed}}/jwks;
                    subrequest_output_buffer_size 64k;
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        if (_keys is not null)
        {
            await _keys.DisposeAsync();
        }
    }

    private static string Token(SigningKey key, string sub = "alice") => TokenFactory.Sign(key, TokenFactory.Claims(sub));

    [Test]
    public async Task Keys_from_a_JWKS_key_request_verify_the_token()
    {
        int before = _keys.Count("/jwks");

        HttpReply reply = await Nginx.GetAsync("/jwks", Token(JwksKey, "from-jwks"));
        HttpReply explicitFormat = await Nginx.GetAsync("/explicit-jwks", Token(JwksKey));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=from-jwks"));
        Assert.That(explicitFormat.Status, Is.EqualTo(200), explicitFormat.ToString());
        // cached in the shared key zone: fetched at most once for both (KeyCacheTests)
        Assert.That(_keys.Count("/jwks"), Is.InRange(1, before + 1));
    }

    [Test]
    public async Task Keys_from_a_keyval_key_request_verify_the_token()
    {
        HttpReply reply = await Nginx.GetAsync("/keyval", Token(KeyvalKey, "from-keyval"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=from-keyval"));
    }

    [Test]
    public async Task Token_not_signed_by_the_fetched_keys_is_rejected_with_401()
    {
        HttpReply reply = await Nginx.GetAsync("/jwks", Token(AlgVariant.Get("RS256").Stranger()));

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"keys\", error=\"invalid_token\""));
    }

    [Test]
    public async Task With_key_cache_0_a_key_request_is_made_for_every_protected_request()
    {
        int before = _keys.Count("/jwks");

        for (int i = 0; i < 5; i++)
        {
            Assert.That((await Nginx.GetAsync("/jwks-uncached", Token(JwksKey))).Status, Is.EqualTo(200));
        }

        Assert.That(_keys.Count("/jwks"), Is.EqualTo(before + 5));
    }

    [Test]
    public async Task Request_without_a_token_makes_no_key_request()
    {
        int before = _keys.Count("/jwks");

        HttpReply reply = await Nginx.GetAsync("/jwks");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(_keys.Count("/jwks"), Is.EqualTo(before));
    }

    [TestCase("abc")]
    [TestCase("a.b")]
    [TestCase("a.b.c.d")]
    [TestCase("a.b.c!")]
    [TestCase("a+b.c/d.e=")]
    public async Task Token_that_cannot_be_a_JWS_makes_no_key_request(string token)
    {
        int before = _keys.Count("/jwks");

        HttpReply reply = await Nginx.GetAsync("/jwks", token);

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"keys\", error=\"invalid_token\""));
        Assert.That(_keys.Count("/jwks"), Is.EqualTo(before));
    }

    [Test]
    public async Task Key_request_is_a_GET_without_the_client_body()
    {
        HttpReply reply = await Nginx.SendAsync(HttpMethod.Post, "/keyval", Token(KeyvalKey, "poster"),
            configure: r => r.Content = new StringContent("client body that must stay with the client"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        FakeRequest seen = _keys.Requests("/keyval").Last();
        Assert.That(seen.Method, Is.EqualTo("GET"));
        Assert.That(seen.Headers.Keys, Has.None.EqualTo("Content-Length").IgnoreCase);
        Assert.That(seen.Headers.Keys, Has.None.EqualTo("Content-Type").IgnoreCase);
    }

    [Test]
    public async Task Client_that_disconnects_during_a_key_request_does_no_harm()
    {
        // the key server never answers in time and nginx waits 5 s for it: the
        // client gives up first by a wide margin. nginx then ends the key
        // request (it sees the client close, or its proxy_read_timeout fires)
        Assert.ThrowsAsync<TimeoutException>(() =>
            Nginx.SendAsync(HttpMethod.Get, "/hanging", Token(JwksKey), timeout: TimeSpan.FromMilliseconds(200)));
        Nginx.WaitForLogLine(TestLogMark, "(client prematurely closed connection|upstream timed out).*subrequest: \"/_hanging\"",
            Poll.Deadline);

        HttpReply reply = await Nginx.GetAsync("/jwks", Token(JwksKey, "after-abort"));

        Assert.That(reply.Body, Is.EqualTo("sub=after-abort"));
    }

    [Test]
    public async Task Key_request_from_an_auth_request_subrequest_in_preaccess_works()
    {
        HttpReply ok = await Nginx.GetAsync("/gate", Token(JwksKey));
        HttpReply bad = await Nginx.GetAsync("/gate", Token(KeyA));

        Assert.That((ok.Status, ok.Body), Is.EqualTo((200, "gate")), ok.ToString());
        Assert.That(bad.Status, Is.EqualTo(401), bad.ToString());
    }

    [Test]
    public async Task Key_request_does_not_forward_the_client_credentials()
    {
        string token = Token(KeyvalKey);
        HttpReply reply = await Nginx.GetAsync("/keyval", token, configure: r =>
        {
            r.Headers.Add("Cookie", "session=secret-cookie");
            r.Headers.Add("X-Api-Key", "secret-header");
        });

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        FakeRequest seen = _keys.Requests("/keyval").Last();
        Assert.That(seen.Headers.Keys, Has.None.EqualTo("Authorization").IgnoreCase);
        Assert.That(seen.Headers.Keys, Has.None.EqualTo("Cookie").IgnoreCase);
        Assert.That(seen.Headers.Keys, Has.None.EqualTo("X-Api-Key").IgnoreCase);
        Assert.That(seen.Method, Is.EqualTo("GET"));
    }

    [Test]
    public async Task Several_key_requests_on_one_level_are_all_used()
    {
        HttpReply first = await Nginx.GetAsync("/two", Token(JwksKey));
        HttpReply second = await Nginx.GetAsync("/two", Token(SecondKey));

        Assert.That(first.Status, Is.EqualTo(200), first.ToString());
        Assert.That(second.Status, Is.EqualTo(200), second.ToString());
    }

    [Test]
    public async Task Three_key_requests_on_one_level_are_all_made_and_used()
    {
        int jwks = _keys.Count("/jwks"), second = _keys.Count("/second"), keyval = _keys.Count("/keyval");

        Assert.That((await Nginx.GetAsync("/three", Token(JwksKey))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/three", Token(SecondKey))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/three", Token(KeyvalKey))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/three", Token(KeyA))).Status, Is.EqualTo(401));

        // every set was fetched (once: they are cached, see KeyCacheTests)
        Assert.That(new[] { _keys.Count("/jwks"), _keys.Count("/second"), _keys.Count("/keyval") },
            Is.All.InRange(1, 2));
        Assert.That(_keys.Count("/second") - second + _keys.Count("/keyval") - keyval + _keys.Count("/jwks") - jwks,
            Is.LessThanOrEqualTo(3));
    }

    [Test]
    public async Task Key_request_uri_may_carry_query_arguments()
    {
        HttpReply reply = await Nginx.GetAsync("/with-args?tenant=acme", Token(KeyA));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(_keys.Requests("/a").Last().Query, Is.EqualTo("?tenant=acme&v=1"));
    }

    [Test]
    public async Task Key_request_and_key_file_combine()
    {
        HttpReply fromFile = await Nginx.GetAsync("/mixed", Token(FileKey));
        HttpReply fromRequest = await Nginx.GetAsync("/mixed", Token(JwksKey));

        Assert.That(fromFile.Status, Is.EqualTo(200), fromFile.ToString());
        Assert.That(fromRequest.Status, Is.EqualTo(200), fromRequest.ToString());
    }

    [Test]
    public async Task Key_request_uri_can_hold_variables()
    {
        Assert.That((await Nginx.GetAsync("/variable?set=a", Token(KeyA))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/variable?set=b", Token(KeyB))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/variable?set=a", Token(KeyB))).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task Validate_sig_off_makes_no_key_request()
    {
        int before = _keys.Count("/jwks");

        HttpReply reply = await Nginx.GetAsync("/nosig", Token(AlgVariant.Get("RS256").Stranger()));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(_keys.Count("/jwks"), Is.EqualTo(before));
    }

    [Test]
    public async Task Key_request_works_in_the_preaccess_phase()
    {
        Assert.That((await Nginx.GetAsync("/preaccess", Token(JwksKey))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/preaccess", Token(KeyA))).Status, Is.EqualTo(401));
    }

    [TestCase(404)]
    [TestCase(500)]
    [TestCase(503)]
    [TestCase(401)]
    [TestCase(204)]
    [TestCase(302)]
    public async Task Key_server_answering_other_than_200_gives_500_and_an_error_line(int status)
    {
        _keys.Set($"/status-{status}", new FakeResponse(status, status == 204 ? "" : TokenFactory.Jwks(JwksKey),
            Headers: status == 302 ? new System.Collections.Generic.Dictionary<string, string> { ["Location"] = "/jwks" } : null));

        HttpReply reply = await Nginx.GetAsync($"/status?status={status}", Token(JwksKey));

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
        Assert.That(reply.Challenges, Is.Empty);
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: key request .* failed");
    }

    [Test]
    public async Task Failed_key_request_fails_the_request_even_when_a_key_file_would_verify()
    {
        _keys.Set("/status-503", FakeResponse.Error(503));

        HttpReply reply = await Nginx.GetAsync("/mixed-failing?status=503", Token(FileKey));

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
    }

    [TestCase("html", "<html><body>Service Unavailable</body></html>")]
    [TestCase("empty", "")]
    [TestCase("null", "null")]
    [TestCase("array", "[1,2,3]")]
    [TestCase("keys-number", "{\"keys\": 5}")]
    [TestCase("truncated", "{\"keys\": [{\"kty\": \"RSA\", \"n\": \"")]
    [TestCase("bad-key", "{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"x\", \"n\": \"!!\", \"e\": \"AQAB\"}]}")]
    public async Task Key_server_answering_unusable_keys_gives_500_and_an_error_line(string name, string body)
    {
        _keys.Set($"/body-{name}", new FakeResponse(200, body));

        HttpReply reply = await Nginx.GetAsync($"/body?case={name}", Token(JwksKey));

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: key request .*(unusable keys|failed)");
    }

    [Test]
    public async Task Key_server_answering_with_Content_Encoding_gives_500_and_an_error_line()
    {
        HttpReply reply = await Nginx.GetAsync("/encoded", Token(JwksKey));

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: key request .*Content-Encoding");
    }

    [Test]
    public async Task Key_server_slower_than_proxy_read_timeout_gives_500_not_a_hang()
    {
        HttpReply reply = await Nginx.GetAsync("/slow", Token(JwksKey));

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*upstream timed out");
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: key request .* failed");
    }

    [Test]
    public async Task Key_server_that_closes_the_connection_mid_body_gives_500()
    {
        _keys.Set("/body-cut", FakeResponse.Cut(TokenFactory.Jwks(JwksKey)));

        HttpReply reply = await Nginx.GetAsync("/body?case=cut", Token(JwksKey));

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: key request .*(failed|unusable)");
    }

    [Test]
    public async Task Key_server_that_is_down_gives_500_and_an_error_line()
    {
        HttpReply reply = await Nginx.GetAsync("/down", Token(JwksKey));

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: key request .* failed");
    }

    [Test]
    public async Task Key_response_larger_than_the_subrequest_buffer_gives_500()
    {
        HttpReply reply = await Nginx.GetAsync("/big", Token(JwksKey));

        Assert.That(reply.Status, Is.EqualTo(500), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*too big subrequest response");
    }

    [Test]
    public async Task Module_serves_normally_after_key_server_failures()
    {
        await Nginx.GetAsync("/down", Token(JwksKey));
        await Nginx.GetAsync("/encoded", Token(JwksKey));

        HttpReply reply = await Nginx.GetAsync("/jwks", Token(JwksKey, "after"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=after"));
    }

    [Test]
    public async Task Big_key_set_within_the_subrequest_buffer_is_used()
    {
        // 60 keys, the right one last
        var keys = Enumerable.Range(0, 59).Select(i => AlgVariant.Get("RS256").Key(0).Jwk(kid: $"filler-{i}")).ToList();
        keys.Add(KeyB.Jwk());
        _keys.Set("/many", FakeResponse.Json(TokenFactory.Jwks(keys.ToArray())));

        HttpReply reply = await Nginx.GetAsync("/variable?set=many", Token(KeyB));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
    }
}
