using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Hybrid;

/// <summary>
/// auth_jwt_introspect: one location for JWT and opaque tokens.  A JWS of
/// the location is verified by auth_jwt alone (no IdP call); any other
/// token is introspected by auth_oauth2_token with its cache; a JWS that
/// fails verification is refused without a second chance; with "all" a
/// verified JWS is introspected too.  $oauth_token_path says which path
/// was taken (sent back in X-Path, on refusals too).  Every test uses its
/// own tokens, so the IdP's counts are its own.
/// </summary>
[TestFixture]
public sealed class HybridTests : HybridFixture
{
    private static readonly SigningKey Key = AlgVariant.Get("RS256").Key(0);
    private static readonly SigningKey Stranger = AlgVariant.Get("RS256").Key(1);

    private string Issuer => KeyServer.BaseUrl + "/realms/hybrid";

    protected override void StartGateway(NginxInstance nginx)
    {
        KeyServer.Set("/realms/hybrid/.well-known/openid-configuration", FakeResponse.Json(
            new JsonObject { ["issuer"] = Issuer, ["jwks_uri"] = Issuer + "/certs" }.ToJsonString()));
        KeyServer.Set("/realms/hybrid/certs", FakeResponse.Json(TokenFactory.Jwks(Key)));
        KeyServer.Set("/keyreq/certs", FakeResponse.Json(TokenFactory.Jwks(Key)));

        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(Key));
        string echo = nginx.Echo("path=$oauth_token_path jwt=$jwt_claim_sub oauth2=$oauth2_token_sub "
            + "active=$oauth2_token_active.");
        const string keys = "auth_jwt_key_file keys.jwks;";
        nginx.Start(Gateway(nginx, "hybrid", string.Join('\n',
            HybridLocation("/opaque", keys, "opaque", echo),
            HybridLocation("/all", keys, "all", echo),
            HybridLocation("/issuer", $"auth_jwt_discovery {Issuer};", "opaque", echo),
            HybridLocation("/preaccess", keys, "opaque", echo,
                "auth_jwt_phase preaccess; auth_oauth2_token_phase preaccess;"),
            HybridLocation("/satisfy-any", keys, "opaque", echo, "satisfy any; deny all;"),
            HybridLocation("/keyreq", "auth_jwt_key_request /_keys/keyreq/certs; auth_jwt_key_cache 0;", "opaque", echo),
            "location = /_token { internal; proxy_pass " + Idp.BaseUrl + "/token; }",
            HybridLocation("/exchange", keys, "opaque", nginx.Echo("path=$oauth_token_path new=$oauth2_token_new_token"),
                "auth_oauth2_token_exchange on; auth_oauth2_token_token_endpoint /_token; auth_oauth2_token_audience backend;"),
            HybridLocation("/satisfy-any-allow", keys, "opaque", echo, "satisfy any; allow 127.0.0.1; deny all;"),
            $$"""
            location /stacked {
                auth_jwt "api";
                {{keys}}
                auth_oauth2_token_introspect on;
                {{PathHeader}}
                {{echo}}
            }
            """)));
    }

    private static string Jwt(string sub, JsonObject? extra = null) =>
        TokenFactory.Sign(Key, TokenFactory.Claims(sub, extra));

    [TestCase("/opaque", TestName = "A_JWT_of_the_location_is_verified_locally_without_an_IdP_call")]
    [TestCase("/preaccess", TestName = "In_the_preaccess_phase_a_JWT_is_verified_locally_without_an_IdP_call")]
    [TestCase("/satisfy-any", TestName = "With_satisfy_any_a_JWT_is_verified_locally_without_an_IdP_call")]
    public async Task Jwt_is_verified_locally(string location)
    {
        string token = Jwt("jwt-local" + location.Replace('/', '-'));

        HttpReply reply = await Nginx.GetAsync(location, token);
        HttpReply again = await Nginx.GetAsync(location, token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=jwt jwt=jwt-local{location.Replace('/', '-')} oauth2= active=."));
        Assert.That(PathOf(reply), Is.EqualTo("[jwt]"));
        Assert.That(again.Status, Is.EqualTo(200), again.ToString());
        Assert.That(Introspections(token), Is.Zero, "a JWS of the location never reaches the IdP");
    }

    [TestCase("/opaque", TestName = "An_opaque_token_is_introspected_once_then_served_from_the_cache")]
    [TestCase("/preaccess", TestName = "In_the_preaccess_phase_an_opaque_token_is_introspected_then_cached")]
    [TestCase("/satisfy-any", TestName = "With_satisfy_any_an_opaque_token_is_introspected_then_cached")]
    public async Task Opaque_token_is_introspected(string location)
    {
        string token = "hybrid-opaque" + location.Replace('/', '-');

        HttpReply first = await Nginx.GetAsync(location, token);

        Assert.That(first.Status, Is.EqualTo(200), first.ToString());
        Assert.That(first.Body, Is.EqualTo($"path=introspection jwt= oauth2=user-{token} active=1."));
        Assert.That(PathOf(first), Is.EqualTo("[introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));

        HttpReply second = await Nginx.GetAsync(location, token);

        Assert.That(second.Status, Is.EqualTo(200), second.ToString());
        Assert.That(second.Body, Is.EqualTo(first.Body));
        Assert.That(Introspections(token), Is.EqualTo(1), "the second request is a cache hit");
    }

    [TestCase("/opaque", TestName = "A_forged_JWT_is_refused_by_auth_jwt_without_an_IdP_call")]
    [TestCase("/all", TestName = "With_all_a_forged_JWT_is_refused_before_introspection")]
    [TestCase("/satisfy-any", TestName = "With_satisfy_any_a_forged_JWT_is_refused_without_an_IdP_call")]
    public async Task Forged_jwt_is_refused_without_introspection(string location)
    {
        string token = TokenFactory.Tampered(Jwt("forged" + location.Replace('/', '-')));

        HttpReply reply = await Nginx.GetAsync(location, token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"api\", error=\"invalid_token\""),
            "auth_jwt's challenge, once");
        Assert.That(PathOf(reply), Is.EqualTo("[jwt]"));
        Assert.That(Introspections(token), Is.Zero, "no second chance through introspection");
    }

    [Test]
    public async Task A_JWT_signed_by_an_unknown_key_is_refused_without_an_IdP_call()
    {
        string token = TokenFactory.Sign(Stranger, TokenFactory.Claims("stranger"));

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(Introspections(token), Is.Zero);
    }

    [Test]
    public async Task An_expired_JWT_is_refused_without_an_IdP_call()
    {
        string token = TokenFactory.Sign(Key, new JsonObject
        {
            ["sub"] = "expired",
            ["iat"] = TokenFactory.Now - 7200,
            ["exp"] = TokenFactory.Now - 3600,
        });

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(Introspections(token), Is.Zero);
    }

    [Test]
    public async Task A_JWT_of_the_configured_issuer_is_verified_locally()
    {
        string token = Jwt("issuer-local", new JsonObject { ["iss"] = Issuer });

        HttpReply reply = await Nginx.GetAsync("/issuer", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("path=jwt jwt=issuer-local oauth2= active=."));
        Assert.That(Introspections(token), Is.Zero);
    }

    [Test]
    public async Task A_forged_JWT_of_the_configured_issuer_is_refused_without_an_IdP_call()
    {
        string token = TokenFactory.Sign(Stranger, TokenFactory.Claims("issuer-forged",
            new JsonObject { ["iss"] = Issuer }));

        HttpReply reply = await Nginx.GetAsync("/issuer", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(PathOf(reply), Is.EqualTo("[jwt]"));
        Assert.That(Introspections(token), Is.Zero);
    }

    [Test]
    public async Task A_JWT_of_another_issuer_goes_to_introspection()
    {
        // signed by a key the location does not have: only the IdP can judge it
        string token = TokenFactory.Sign(Stranger, TokenFactory.Claims("issuer-other",
            new JsonObject { ["iss"] = "https://other.example/" }));

        HttpReply reply = await Nginx.GetAsync("/issuer", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=introspection jwt= oauth2=user-{token} active=1."));
        Assert.That(PathOf(reply), Is.EqualTo("[introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task With_all_a_valid_JWT_is_verified_and_introspected()
    {
        string token = Jwt("all-valid");

        HttpReply reply = await Nginx.GetAsync("/all", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=jwt+introspection jwt=all-valid oauth2=user-{token} active=1."));
        Assert.That(PathOf(reply), Is.EqualTo("[jwt+introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task With_all_a_valid_JWT_the_IdP_says_is_inactive_is_refused()
    {
        string token = Jwt("all-revoked");
        Idp.Revoke(token);

        HttpReply reply = await Nginx.GetAsync("/all", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""),
            "auth_oauth2_token's challenge, once");
        Assert.That(PathOf(reply), Is.EqualTo("[jwt+introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task With_opaque_the_IdP_is_not_asked_about_a_valid_JWT_it_revoked()
    {
        string token = Jwt("opaque-revoked");
        Idp.Revoke(token);

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(Introspections(token), Is.Zero);
    }

    [TestCase("/opaque", TestName = "An_inactive_opaque_token_is_refused_with_one_challenge")]
    [TestCase("/satisfy-any", TestName = "With_satisfy_any_an_inactive_opaque_token_is_refused")]
    public async Task Inactive_opaque_token_is_refused(string location)
    {
        string token = "inactive-hybrid" + location.Replace('/', '-');

        HttpReply reply = await Nginx.GetAsync(location, token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        Assert.That(PathOf(reply), Is.EqualTo("[introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task A_JWE_shaped_token_is_introspected()
    {
        string token = TokenFactory.Encode("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\"}") + ".a.b.c.d";

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(PathOf(reply), Is.EqualTo("[introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task An_alg_none_token_is_introspected_never_accepted_locally()
    {
        string token = TokenFactory.Unsigned(TokenFactory.Claims("none-alg"));
        Idp.Revoke(token);

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(PathOf(reply), Is.EqualTo("[introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task An_opaque_token_causes_no_key_request_and_a_JWT_no_introspection()
    {
        const string opaque = "hybrid-keyreq-opaque";
        string jwt = Jwt("keyreq-jwt");

        HttpReply introspected = await Nginx.GetAsync("/keyreq", opaque);

        Assert.That(introspected.Status, Is.EqualTo(200), introspected.ToString());
        Assert.That(PathOf(introspected), Is.EqualTo("[introspection]"));
        Assert.That(KeyServer.Count("/keyreq/certs"), Is.Zero, "the path is decided before any key request");

        HttpReply verified = await Nginx.GetAsync("/keyreq", jwt);

        Assert.That(verified.Status, Is.EqualTo(200), verified.ToString());
        Assert.That(verified.Body, Is.EqualTo("path=jwt jwt=keyreq-jwt oauth2= active=."));
        Assert.That(KeyServer.Count("/keyreq/certs"), Is.EqualTo(1));
        Assert.That(Introspections(jwt), Is.Zero);
    }

    [Test]
    public async Task With_an_exchange_a_JWT_is_exchanged_without_introspection_and_an_opaque_token_after_it()
    {
        string jwt = Jwt("exchange-jwt");
        const string opaque = "hybrid-exchange-opaque";

        HttpReply local = await Nginx.GetAsync("/exchange", jwt);
        HttpReply introspected = await Nginx.GetAsync("/exchange", opaque);

        Assert.That(local.Status, Is.EqualTo(200), local.ToString());
        Assert.That(local.Body, Is.EqualTo($"path=jwt new=x.{jwt}.backend."));
        Assert.That(Introspections(jwt), Is.Zero);
        Assert.That(Idp.Calls("/token", jwt), Is.EqualTo(1));
        Assert.That(introspected.Status, Is.EqualTo(200), introspected.ToString());
        Assert.That(introspected.Body, Is.EqualTo($"path=introspection new=x.{opaque}.backend."));
        Assert.That(Introspections(opaque), Is.EqualTo(1));
        Assert.That(Idp.Calls("/token", opaque), Is.EqualTo(1));
    }

    [Test]
    public async Task Concurrent_requests_for_one_opaque_token_wait_for_one_introspection()
    {
        // the IdP answers "slow*" after 3 s: the other requests wait on the
        // shared single-flight and come back through auth_jwt's handler
        const string token = "slow-hybrid-concurrent";

        HttpReply[] replies = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => Nginx.GetAsync("/opaque", token)));

        Assert.That(replies.Select(r => r.Status), Is.All.EqualTo(200), string.Join("\n", replies.Select(r => r.ToString())));
        Assert.That(replies.Select(r => r.Body), Is.All.EqualTo($"path=introspection jwt= oauth2=user-{token} active=1."));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task With_satisfy_any_allow_grants_what_either_path_refused()
    {
        string forged = TokenFactory.Tampered(Jwt("allow-forged"));
        const string inactive = "inactive-hybrid-allow";

        HttpReply jwt = await Nginx.GetAsync("/satisfy-any-allow", forged);
        HttpReply introspected = await Nginx.GetAsync("/satisfy-any-allow", inactive);
        HttpReply none = await Nginx.GetAsync("/satisfy-any-allow");

        Assert.That(jwt.Status, Is.EqualTo(200), jwt.ToString());
        Assert.That(jwt.Challenges, Is.Empty, "a granted request carries no challenge");
        Assert.That(introspected.Status, Is.EqualTo(200), introspected.ToString());
        Assert.That(none.Status, Is.EqualTo(200), none.ToString());
        Assert.That(Introspections(forged), Is.Zero);
        Assert.That(Introspections(inactive), Is.EqualTo(1));
    }

    [Test]
    public async Task No_token_is_refused_by_auth_jwt_with_one_challenge()
    {
        HttpReply reply = await Nginx.GetAsync("/opaque");

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"api\""));
        Assert.That(PathOf(reply), Is.EqualTo("[]"));
    }

    [Test]
    public async Task Without_the_switch_stacked_modules_both_check_a_JWT()
    {
        string token = Jwt("stacked-jwt");

        HttpReply reply = await Nginx.GetAsync("/stacked", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=jwt+introspection jwt=stacked-jwt oauth2=user-{token} active=1."));
        Assert.That(Introspections(token), Is.EqualTo(1), "both modules act, as before");
    }

    [Test]
    public async Task Without_the_switch_stacked_modules_refuse_an_opaque_token()
    {
        const string token = "stacked-opaque";

        HttpReply reply = await Nginx.GetAsync("/stacked", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenges, Has.Length.EqualTo(1), string.Join(" | ", reply.Challenges));
    }
}
