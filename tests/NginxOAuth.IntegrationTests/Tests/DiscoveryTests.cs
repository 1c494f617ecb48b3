using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// auth_jwt_discovery: the metadata document and the key set its jwks_uri
/// names are fetched by subrequests through a generated location (or the
/// operator's uri=), kept in the shared key set cache (one fetch each for
/// 2 workers), and the token's iss must be the issuer.  Every test has its
/// own issuer path, so its counts are its own.
/// </summary>
[TestFixture]
public sealed class DiscoveryTests : NginxFixture
{
    private static readonly SigningKey Key = AlgVariant.Get("RS256").Key(0);
    private static readonly SigningKey MovedKey = AlgVariant.Get("ES256").Key(0);

    private FakeHttpServer _idp = null!;
    private FakeHttpServer _other = null!;

    private string Issuer(string realm) => $"{_idp.BaseUrl}/realms/{realm}";

    private static string Metadata(string issuer, string jwksUri) =>
        new JsonObject { ["issuer"] = issuer, ["jwks_uri"] = jwksUri, ["token_endpoint"] = issuer + "/token" }
            .ToJsonString();

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeHttpServer.StartAsync();
        _other = await FakeHttpServer.StartAsync();

        foreach (string realm in new[] { "ok", "iss", "route" })
        {
            _idp.Set($"/realms/{realm}/.well-known/openid-configuration",
                FakeResponse.Json(Metadata(Issuer(realm), Issuer(realm) + "/certs")));
            _idp.Set($"/realms/{realm}/certs", FakeResponse.Json(TokenFactory.Jwks(Key)));
        }

        _idp.Set("/.well-known/oauth-authorization-server/realms/oauth",
            FakeResponse.Json(Metadata(Issuer("oauth"), Issuer("oauth") + "/certs?v=1")));
        _idp.Set("/realms/oauth/certs", FakeResponse.Json(TokenFactory.Jwks(Key)));

        _idp.Set("/realms/foreign/.well-known/openid-configuration",
            FakeResponse.Json(Metadata(Issuer("foreign"), _other.BaseUrl + "/certs")));
        _other.Set("/certs", FakeResponse.Json(TokenFactory.Jwks(Key)));

        _idp.Set("/realms/array/.well-known/openid-configuration", FakeResponse.Json("[1,2]"));
        _idp.Set("/realms/garbage/.well-known/openid-configuration", FakeResponse.Garbage());
        _idp.Set("/realms/other/.well-known/openid-configuration",
            FakeResponse.Json(Metadata(Issuer("ok"), Issuer("other") + "/certs")));
        _idp.Set("/realms/down/.well-known/openid-configuration", FakeResponse.Error(503));
        _idp.Set("/realms/down/certs", FakeResponse.Json(TokenFactory.Jwks(Key)));
        _idp.Set("/realms/moved/.well-known/openid-configuration",
            FakeResponse.Json(Metadata(Issuer("moved"), Issuer("moved") + "/certs-a")));
        _idp.Set("/realms/moved/certs-a", FakeResponse.Json(TokenFactory.Jwks(Key)));
        _idp.Set("/realms/moved/certs-b", FakeResponse.Json(TokenFactory.Jwks(MovedKey)));

        nginx.AllowLogLines("discovery");
        nginx.AllowLogLines("key request");
        nginx.AllowLogLines("no usable key set");

        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "discovery";
                location /_idp/ { internal; auth_jwt off; proxy_pass {{_idp.BaseUrl}}/; }

                location /ok {
                    auth_jwt_discovery {{Issuer("ok")}};
                    {{echo}}
                }
                location /iss {
                    auth_jwt_discovery {{Issuer("iss")}}/.well-known/openid-configuration;
                    {{echo}}
                }
                location /route {
                    auth_jwt_discovery {{Issuer("route")}} uri=/_idp/;
                    {{echo}}
                }
                location /oauth {
                    auth_jwt_discovery {{Issuer("oauth")}} metadata=oauth http_timeout=5;
                    {{echo}}
                }
                location /foreign {
                    auth_jwt_discovery {{Issuer("foreign")}};
                    auth_jwt_key_refresh miss=1h;
                    {{echo}}
                }
                location /array { auth_jwt_discovery {{Issuer("array")}}; {{echo}} }
                location /garbage { auth_jwt_discovery {{Issuer("garbage")}}; {{echo}} }
                location /other { auth_jwt_discovery {{Issuer("other")}}; {{echo}} }
                location /down {
                    auth_jwt_discovery {{Issuer("down")}};
                    auth_jwt_key_refresh miss=1s;
                    {{echo}}
                }
                location /moved {
                    auth_jwt_discovery {{Issuer("moved")}};
                    auth_jwt_key_refresh miss=1s;
                    {{echo}}
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        await _idp.DisposeAsync();
        await _other.DisposeAsync();
    }

    private string Token(string realm) =>
        TokenFactory.Sign(Key, TokenFactory.Claims("alice", new JsonObject { ["iss"] = Issuer(realm) }));

    [Test]
    public async Task Metadata_and_keys_are_fetched_once_for_many_requests_in_both_workers()
    {
        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Nginx.GetAsync("/ok", Token("ok"))));

        Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(200));
        Assert.That(replies[0].Body, Does.Contain("sub=alice"));

        for (int i = 0; i < 10; i++)
        {
            Assert.That((await Nginx.GetAsync("/ok", Token("ok"))).Status, Is.EqualTo(200));
        }

        Assert.That(_idp.Count("/realms/ok/.well-known/openid-configuration"), Is.EqualTo(1));
        Assert.That(_idp.Count("/realms/ok/certs"), Is.EqualTo(1));
    }

    [Test]
    public async Task A_token_of_another_issuer_is_rejected_with_401()
    {
        Assert.That((await Nginx.GetAsync("/iss", Token("iss"))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/iss", Token("evil"))).Status, Is.EqualTo(401));
        string noIss = TokenFactory.Sign(Key, TokenFactory.Claims("alice"));
        Assert.That((await Nginx.GetAsync("/iss", noIss)).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task The_operators_location_reaches_the_issuer()
    {
        Assert.That((await Nginx.GetAsync("/route", Token("route"))).Status, Is.EqualTo(200));
        Assert.That(_idp.Count("/realms/route/certs"), Is.EqualTo(1));
    }

    [Test]
    public async Task Rfc8414_metadata_is_read_and_the_jwks_query_is_passed()
    {
        Assert.That((await Nginx.GetAsync("/oauth", Token("oauth"))).Status, Is.EqualTo(200));
        Assert.That(_idp.Count("/.well-known/oauth-authorization-server/realms/oauth"), Is.EqualTo(1));
        Assert.That(_idp.Requests("/realms/oauth/certs").Single().Query, Is.EqualTo("?v=1"));
    }

    [Test]
    public async Task A_jwks_uri_on_another_origin_is_refused_with_500()
    {
        long mark = Nginx.LogMark();

        Assert.That((await Nginx.GetAsync("/foreign", Token("foreign"))).Status, Is.EqualTo(500));
        Assert.That(_other.Count("/certs"), Is.EqualTo(0));
        Assert.That(Nginx.ErrorLogSince(mark), Does.Contain("not on the issuer's origin"));
    }

    [TestCase("array")]
    [TestCase("garbage")]
    [TestCase("other")]
    public async Task Unusable_metadata_is_refused_with_500(string realm)
    {
        long mark = Nginx.LogMark();

        Assert.That((await Nginx.GetAsync("/" + realm, Token(realm))).Status, Is.EqualTo(500));
        Assert.That(Nginx.ErrorLogSince(mark), Does.Contain("auth_jwt: discovery"));
        Assert.That(_idp.Count($"/realms/{realm}/certs"), Is.EqualTo(0));
    }

    [Test]
    public async Task A_jwks_uri_that_moves_is_followed_with_its_own_keys()
    {
        // new metadata naming another jwks_uri is followed: its keys verify,
        // the old uri's keys no longer do
        Assert.That((await Nginx.GetAsync("/moved", Token("moved"))).Status, Is.EqualTo(200));

        _idp.Set("/realms/moved/.well-known/openid-configuration",
            FakeResponse.Json(Metadata(Issuer("moved"), Issuer("moved") + "/certs-b")));
        string moved = TokenFactory.Sign(MovedKey,
            TokenFactory.Claims("alice", new JsonObject { ["iss"] = Issuer("moved") }));

        // the unknown kid refetches the metadata once miss= (1 s) has passed
        await Poll.UntilAsync(() => Nginx.GetAsync("/moved", moved), r => r.Status == 200,
            "the token of the moved key set verifies");
        Assert.That(_idp.Count("/realms/moved/certs-b"), Is.EqualTo(1));
        Assert.That((await Nginx.GetAsync("/moved", Token("moved"))).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task An_issuer_down_at_start_is_used_once_it_is_up()
    {
        Assert.That((await Nginx.GetAsync("/down", Token("down"))).Status, Is.EqualTo(500));

        _idp.Set("/realms/down/.well-known/openid-configuration",
            FakeResponse.Json(Metadata(Issuer("down"), Issuer("down") + "/certs")));

        await Poll.UntilAsync(() => Nginx.GetAsync("/down", Token("down")), r => r.Status == 200,
            "the issuer is up");
        Assert.That(_idp.Count("/realms/down/certs"), Is.EqualTo(1));
    }
}
