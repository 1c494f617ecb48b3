using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// The key set cache of auth_jwt_discovery and of auth_jwt_provider key
/// sources across reload (the entries survive: no metadata or key fetch
/// before the refresh is due; a changed issuer never gets the old issuer's
/// keys) and while a provider's IdP is down (the last good set is used,
/// [warn] logged).  Every test has its own realm, so its counts are its own.
/// </summary>
[TestFixture]
public sealed class DiscoveryReloadTests : NginxFixture
{
    private static readonly SigningKey KeyA = AlgVariant.Get("RS256").Key(0);
    private static readonly SigningKey KeyB = AlgVariant.Get("ES256").Key(0);

    private FakeHttpServer _idp = null!;

    private string Issuer(string realm) => $"{_idp.BaseUrl}/realms/{realm}";

    private static string MetadataPath(string realm) => $"/realms/{realm}/.well-known/openid-configuration";

    private static string CertsPath(string realm) => $"/realms/{realm}/certs";

    private void Realm(string realm, SigningKey key)
    {
        _idp.Set(MetadataPath(realm), FakeResponse.Json(new JsonObject
        {
            ["issuer"] = Issuer(realm),
            ["jwks_uri"] = Issuer(realm) + "/certs",
        }.ToJsonString()));
        _idp.Set(CertsPath(realm), FakeResponse.Json(TokenFactory.Jwks(key)));
    }

    private string Config(bool changed)
    {
        string echo = Nginx.Echo("sub=$jwt_claim_sub iss=$jwt_provider");
        return $$"""
            server {
                listen 127.0.0.1:{{Nginx.Port}};
                auth_jwt "reload";
                location /_pk/ { internal; auth_jwt off; proxy_pass {{_idp.BaseUrl}}/; }

                location /keep {
                    auth_jwt_discovery {{Issuer("keep")}};
                    auth_jwt_key_refresh min=1h;
                    {{echo}}
                }
                location /change {
                    auth_jwt_discovery {{Issuer(changed ? "new" : "old")}};
                    auth_jwt_key_refresh min=1h miss=1h;
                    {{echo}}
                }
                location /prov {
                    auth_jwt_provider {{Issuer("pdisco")}} discovery;
                    auth_jwt_provider {{Issuer("pkeys")}} key_request=/_pk/realms/pkeys/certs;
                    auth_jwt_key_refresh min=1h;
                    {{echo}}
                }
                location /provdown {
                    auth_jwt_provider {{Issuer("pdown")}} key_request=/_pk/realms/pdown/certs;
                    auth_jwt_provider {{Issuer("pddown")}} discovery;
                    auth_jwt_key_refresh min=1s max=1s miss=1s stale=1h;
                    {{echo}}
                }
            }
            """;
    }

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeHttpServer.StartAsync();
        foreach (string realm in new[] { "keep", "old", "pdisco", "pkeys", "pdown", "pddown" })
        {
            Realm(realm, KeyA);
        }

        Realm("new", KeyB);

        nginx.AllowLogLines("not refreshed");
        nginx.AllowLogLines("key request");
        nginx.AllowLogLines("discovery");

        nginx.Start(Config(changed: false));
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private string Token(string realm, SigningKey? key = null) =>
        TokenFactory.Sign(key ?? KeyA, TokenFactory.Claims("alice", new JsonObject { ["iss"] = Issuer(realm) }));

    private async Task<int[]> Burst(string path, string token, int n) =>
        (await Task.WhenAll(Enumerable.Range(0, n).Select(_ => Nginx.GetAsync(path, token))))
            .Select(r => r.Status).ToArray();

    private int Fetches(string realm) => _idp.Count(MetadataPath(realm)) + _idp.Count(CertsPath(realm));

    [Test]
    public async Task Reload_keeps_the_discovered_metadata_and_keys()
    {
        HttpReply first = await Nginx.GetAsync("/keep", Token("keep"));
        Assert.That(first.Status, Is.EqualTo(200), first.Body);
        Assert.That(_idp.Count(MetadataPath("keep")), Is.EqualTo(1));
        Assert.That(_idp.Count(CertsPath("keep")), Is.EqualTo(1));

        // nginx -s reload; returns once the new workers (polled with a deadline) answer
        Nginx.Reload(viaCommand: true);

        Assert.That(await Burst("/keep", Token("keep"), 8), Is.All.EqualTo(200));
        Assert.That(_idp.Count(MetadataPath("keep")), Is.EqualTo(1), "no metadata fetch before the refresh is due");
        Assert.That(_idp.Count(CertsPath("keep")), Is.EqualTo(1), "no key fetch before the refresh is due");
    }

    [Test]
    public async Task A_reload_that_changes_the_issuer_never_serves_the_old_issuers_keys()
    {
        Assert.That((await Nginx.GetAsync("/change", Token("old"))).Status, Is.EqualTo(200));

        try
        {
            Nginx.Reload(Config(changed: true));

            Assert.That((await Nginx.GetAsync("/change", Token("old"))).Status, Is.EqualTo(401),
                "the old issuer is no longer accepted");
            Assert.That((await Nginx.GetAsync("/change", Token("new", KeyA))).Status, Is.EqualTo(401),
                "the old issuer's key does not verify a token of the new issuer");
            HttpReply ok = await Nginx.GetAsync("/change", Token("new", KeyB));
            Assert.That(ok.Status, Is.EqualTo(200), ok.Body);
            Assert.That(_idp.Count(MetadataPath("new")), Is.EqualTo(1));
            Assert.That(_idp.Count(CertsPath("new")), Is.EqualTo(1));
        }
        finally
        {
            Nginx.Reload(Config(changed: false));
        }
    }

    [Test]
    public async Task Provider_key_sources_survive_reload()
    {
        Assert.That((await Nginx.GetAsync("/prov", Token("pdisco"))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/prov", Token("pkeys"))).Status, Is.EqualTo(200));
        int disco = Fetches("pdisco");
        int keys = _idp.Count(CertsPath("pkeys"));
        Assert.That(disco, Is.EqualTo(2), "metadata and key set, once each");
        Assert.That(keys, Is.EqualTo(1));

        Nginx.Reload();

        Assert.That(await Burst("/prov", Token("pdisco"), 6), Is.All.EqualTo(200));
        Assert.That(await Burst("/prov", Token("pkeys"), 6), Is.All.EqualTo(200));
        Assert.That(Fetches("pdisco"), Is.EqualTo(disco));
        Assert.That(_idp.Count(CertsPath("pkeys")), Is.EqualTo(keys));

        // still one provider per issuer after reload: pkeys' token with pdisco's iss is refused
        JsonObject claims = TokenFactory.Claims("mallory", new JsonObject { ["iss"] = Issuer("nobody") });
        Assert.That((await Nginx.GetAsync("/prov", TokenFactory.Sign(KeyA, claims))).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task A_provider_key_request_uses_its_last_good_set_while_its_idp_is_down()
    {
        Assert.That((await Nginx.GetAsync("/provdown", Token("pdown"))).Status, Is.EqualTo(200));

        _idp.Set(CertsPath("pdown"), FakeResponse.Error(503));
        int before = _idp.Count(CertsPath("pdown"));

        try
        {
            await Poll.UntilAsync(async () =>
            {
                Assert.That((await Nginx.GetAsync("/provdown", Token("pdown"))).Status, Is.EqualTo(200));
                return _idp.Count(CertsPath("pdown"));
            }, n => n >= before + 2, "refreshes tried while the key server fails");

            Nginx.WaitForLogLine(TestLogMark,
                @"\[warn\].*auth_jwt: key set .*/realms/pdown/certs.* not refreshed: using the one fetched");
        }
        finally
        {
            Realm("pdown", KeyA);
        }
    }

    [Test]
    public async Task A_provider_discovery_uses_its_last_good_metadata_and_keys_while_its_idp_is_down()
    {
        Assert.That((await Nginx.GetAsync("/provdown", Token("pddown"))).Status, Is.EqualTo(200));

        _idp.Set(MetadataPath("pddown"), FakeResponse.Error(503));
        _idp.Set(CertsPath("pddown"), FakeResponse.Error(503));
        int before = _idp.Count(MetadataPath("pddown"));

        try
        {
            await Poll.UntilAsync(async () =>
            {
                Assert.That((await Nginx.GetAsync("/provdown", Token("pddown"))).Status, Is.EqualTo(200));
                return _idp.Count(MetadataPath("pddown"));
            }, n => n >= before + 2, "metadata refreshes tried while the IdP fails");

            Nginx.WaitForLogLine(TestLogMark,
                @"\[warn\].*auth_jwt: key set .*pddown.* not refreshed: using the one fetched");

            // the other provider of the location is not affected
            Assert.That((await Nginx.GetAsync("/provdown", Token("pdown"))).Status, Is.EqualTo(200));
        }
        finally
        {
            Realm("pddown", KeyA);
        }
    }
}
