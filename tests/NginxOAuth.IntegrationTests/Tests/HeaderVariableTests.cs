using System;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// No variable of the module holds a control character: a CR/LF from a
/// token (a forged one too: $jwt_header_* is filled before the signature is
/// checked) or from an IdP answer reaches add_header escaped as \xNN, so it
/// cannot add a header (a Set-Cookie) to the response.
/// </summary>
[TestFixture]
public sealed class HeaderVariableTests : NginxFixture
{
    private const string Crlf = "\r\nSet-Cookie: injected=1";

    private static readonly SigningKey Stranger = AlgVariant.Get("RS256").Key(8);

    private FakeHttpServer _idp = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeHttpServer.StartAsync();
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("ok");
        nginx.Start($$"""
            auth_jwt_header_set $kid_set kid;
            auth_jwt_claim_set $name_set name;
            auth_oauth2_token_claim_set $role_set role;

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location /jwt {
                    auth_jwt "hdr";
                    auth_jwt_key_file keys.jwks;
                    add_header X-Kid $jwt_header_kid always;
                    add_header X-Kid-Set $kid_set always;
                    add_header X-Name $jwt_claim_name always;
                    add_header X-Name-Set $name_set always;
                    add_header X-Claims $jwt_claims always;
                    {{echo}}
                }

                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
                location = /_token { internal; proxy_pass {{_idp.BaseUrl}}/token; }

                location /intro {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_endpoint /_introspect;
                    add_header X-Sub $oauth2_token_sub always;
                    add_header X-Scope $oauth2_token_scope always;
                    add_header X-Client $oauth2_token_client_id always;
                    add_header X-Role $role_set always;
                    {{echo}}
                }

                location /exchange {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_token_endpoint /_token;
                    add_header X-Type $oauth2_token_new_token_type always;
                    add_header X-Issued $oauth2_token_new_issued_token_type always;
                    add_header X-New $oauth2_token_new_token always;
                    {{echo}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private static void AssertNoInjection(HttpReply reply, params string[] headers)
    {
        Assert.That(reply.Header("Set-Cookie"), Is.Empty, "a header was injected: " + reply);
        foreach (string name in headers)
        {
            string[] values = reply.Header(name);
            Assert.That(values, Has.Length.EqualTo(1), name);
            Assert.That(values[0].Any(c => c < 0x20 || c == 0x7f), Is.False, $"{name}: {values[0]}");
            Assert.That(values[0], Does.Contain("\\x0d\\x0aSet-Cookie: injected=1"), name + " keeps the text, escaped");
        }
    }

    [Test]
    public async Task Forged_token_with_CRLF_in_kid_injects_nothing_into_the_401()
    {
        var header = new JsonObject { ["alg"] = "RS256", ["typ"] = "JWT", ["kid"] = "k" + Crlf };
        string token = TokenFactory.Sign(Stranger, TokenFactory.Claims("forged"), header);

        HttpReply reply = await Nginx.GetAsync("/jwt", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        AssertNoInjection(reply, "X-Kid", "X-Kid-Set");
        Assert.That(reply.Header("X-Name"), Is.Empty, "claims of an unverified token stay empty");
    }

    [Test]
    public async Task Verified_token_with_CRLF_in_claims_injects_nothing()
    {
        var header = new JsonObject { ["alg"] = "RS256", ["typ"] = "JWT", ["kid"] = Keys.Rs256.Kid };
        JsonObject claims = TokenFactory.Claims("crlf", new JsonObject { ["name"] = "n" + Crlf });
        string token = TokenFactory.Sign(Keys.Rs256, claims, header);

        HttpReply reply = await Nginx.GetAsync("/jwt", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        AssertNoInjection(reply, "X-Name", "X-Name-Set");
        Assert.That(reply.Header("X-Claims").Single(), Does.Contain("\\r\\nSet-Cookie"), "$jwt_claims is JSON-escaped");
    }

    [Test]
    public async Task Introspection_answer_with_CRLF_in_members_injects_nothing()
    {
        string v = "v\\r\\nSet-Cookie: injected=1";
        _idp.Set("/introspect", FakeResponse.Json("{\"active\":true,\"sub\":\"" + v + "\",\"scope\":\"" + v
            + "\",\"client_id\":\"" + v + "\",\"role\":\"" + v + "\"}"));

        HttpReply reply = await Nginx.GetAsync("/intro", "intro-crlf");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        AssertNoInjection(reply, "X-Sub", "X-Scope", "X-Client", "X-Role");
    }

    [Test]
    public async Task Exchange_answer_with_CRLF_in_the_token_type_injects_nothing()
    {
        _idp.Set("/token", FakeResponse.Json(
            "{\"access_token\":\"fine\",\"token_type\":\"t\\r\\nSet-Cookie: injected=1\","
            + "\"issued_token_type\":\"t\\r\\nSet-Cookie: injected=1\"}"));

        HttpReply reply = await Nginx.GetAsync("/exchange", "exchange-crlf");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        AssertNoInjection(reply, "X-Type", "X-Issued");
        Assert.That(reply.Header("X-New"), Is.EqualTo(new[] { "fine" }));
    }
}
