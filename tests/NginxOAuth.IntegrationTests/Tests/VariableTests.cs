using System;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>$jwt_header_*, $jwt_claim_*, $jwt_claims, $jwt_nowtime, auth_jwt_claim_set, auth_jwt_header_set.</summary>
[TestFixture]
public sealed class VariableTests : NginxFixture
{
    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        nginx.Start($$"""
            log_format jwt 'status=$status sub=$jwt_claim_sub kid=$jwt_header_kid aud=$jwt_audience';

            auth_jwt_claim_set $jwt_audience aud;
            auth_jwt_claim_set $jwt_email info email;
            auth_jwt_claim_set $jwt_missing info nothing;
            auth_jwt_header_set $jwt_key_id kid;
            auth_jwt_header_set $jwt_ext_name ext name;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "vars";
                auth_jwt_key_file keys.jwks;

                location /sub { {{nginx.Echo("sub=$jwt_claim_sub")}} }
                location /groups { {{nginx.Echo("$jwt_claim_groups")}} }
                location /types {
                    {{nginx.Echo("n=$jwt_claim_n f=$jwt_claim_f b=$jwt_claim_b z=$jwt_claim_z o=$jwt_claim_o s=$jwt_claim_s x=$jwt_claim_absent")}}
                }
                location /mixed-array { {{nginx.Echo("$jwt_claim_list")}} }
                location /header { {{nginx.Echo("alg=$jwt_header_alg kid=$jwt_header_kid typ=$jwt_header_typ")}} }
                location /claims { {{nginx.Echo("$jwt_claims")}} }
                location /now { {{nginx.Echo("$jwt_nowtime")}} }
                location /set {
                    {{nginx.Echo("aud=$jwt_audience email=$jwt_email kid=$jwt_key_id ext=$jwt_ext_name missing=$jwt_missing")}}
                }
                location /rejected {
                    add_header X-Kid $jwt_header_kid always;
                    add_header X-Set-Kid $jwt_key_id always;
                    add_header X-Sub $jwt_claim_sub always;
                    add_header X-Set-Aud $jwt_audience always;
                    add_header X-Claims $jwt_claims always;
                    {{nginx.Echo("sub=$jwt_claim_sub")}}
                }
                location /logged {
                    access_log {{nginx.Directory}}/jwt-access.log jwt;
                    {{nginx.Echo("logged")}}
                }
                location /public {
                    auth_jwt off;
                    {{nginx.Echo("sub=$jwt_claim_sub kid=$jwt_header_kid claims=$jwt_claims now=$jwt_nowtime")}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    private async Task<string> BodyAsync(string path, JsonObject extra, JsonObject? header = null)
    {
        HttpReply reply = await Nginx.GetAsync(path, TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims("alice", extra), header));
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        return reply.Body;
    }

    [Test]
    public async Task Claim_variable_holds_a_string_claim_unescaped()
    {
        Assert.That(await BodyAsync("/types", new JsonObject { ["s"] = "a\"b\\c é ☃" }),
            Does.Contain("s=a\"b\\c é ☃ "));
    }

    [Test]
    public async Task Claim_variable_renders_numbers_booleans_and_objects_as_JSON()
    {
        string body = await BodyAsync("/types", new JsonObject
        {
            ["n"] = 42,
            ["f"] = 1.5,
            ["b"] = false,
            ["o"] = new JsonObject { ["k"] = "v", ["a"] = new JsonArray(1, 2) },
            ["s"] = "str",
        });

        Assert.That(body, Is.EqualTo("n=42 f=1.5 b=false z= o={\"k\":\"v\",\"a\":[1,2]} s=str x="));
    }

    [Test]
    public async Task Claim_variable_renders_null_as_an_empty_string()
    {
        // native/include/ngx_oauth_abi.h, nox_json_get: "null as an empty string"
        Assert.That(await BodyAsync("/types", new JsonObject { ["z"] = null }), Does.Contain(" z= "));
        Assert.That(await BodyAsync("/mixed-array", new JsonObject { ["list"] = new JsonArray("a", null, "b") }), Is.EqualTo("a,,b"));
    }

    [Test]
    public async Task Claim_variable_joins_array_elements_with_commas()
    {
        Assert.That(await BodyAsync("/groups", new JsonObject { ["groups"] = new JsonArray("admins", "dev ops", "ünïcode") }),
            Is.EqualTo("admins,dev ops,ünïcode"));
        Assert.That(await BodyAsync("/mixed-array", new JsonObject { ["list"] = new JsonArray("a", 1, true, 2.5) }),
            Is.EqualTo("a,1,true,2.5"));
        Assert.That(await BodyAsync("/groups", new JsonObject { ["groups"] = new JsonArray() }), Is.EqualTo(""));
    }

    [Test]
    public async Task Header_variables_hold_the_JOSE_header()
    {
        Assert.That(await BodyAsync("/header", []), Is.EqualTo($"alg=RS256 kid={Keys.Rs256.Kid} typ=JWT"));
    }

    [Test]
    public async Task Jwt_claims_holds_the_payload_as_compact_JSON()
    {
        long now = TokenFactory.Now;
        string payload = $"{{ \"sub\" : \"alice\",\n  \"exp\" : {now + 3600},\n  \"nested\" : {{ \"a\" : [ 1, 2 ] }} }}";
        string token = TokenFactory.SignRaw(Keys.Rs256, "{\"alg\":\"RS256\",\"kid\":\"" + Keys.Rs256.Kid + "\"}", payload);

        HttpReply reply = await Nginx.GetAsync("/claims", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Does.Not.Contain(" ").And.Not.Contain("\n"));
        Assert.That(JsonNode.DeepEquals(JsonNode.Parse(reply.Body), JsonNode.Parse(payload)), Is.True, reply.Body);
    }

    [Test]
    public async Task Jwt_nowtime_is_the_current_unix_time()
    {
        long before = TokenFactory.Now;
        string body = await BodyAsync("/now", []);
        long after = TokenFactory.Now;

        long now = long.Parse(body, CultureInfo.InvariantCulture);
        Assert.That(now, Is.InRange(before - 2, after + 2));
    }

    [Test]
    public async Task Claim_set_and_header_set_variables_read_names_and_paths()
    {
        string body = await BodyAsync("/set",
            new JsonObject { ["aud"] = new JsonArray("api", "web"), ["info"] = new JsonObject { ["email"] = "a@example.test" } },
            new JsonObject { ["ext"] = new JsonObject { ["name"] = "ext-value" } });

        Assert.That(body, Is.EqualTo($"aud=api,web email=a@example.test kid={Keys.Rs256.Kid} ext=ext-value missing="));
    }

    [Test]
    public async Task Header_variables_are_set_for_a_rejected_token_but_claim_variables_are_not()
    {
        string forged = TokenFactory.Sign(AlgVariant.Get("RS256").Stranger(),
            TokenFactory.Claims("mallory", new JsonObject { ["aud"] = "api" }));

        HttpReply reply = await Nginx.GetAsync("/rejected", forged);

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Header("X-Kid"), Is.EqualTo(new[] { Keys.Rs256.Kid }));
        Assert.That(reply.Header("X-Set-Kid"), Is.EqualTo(new[] { Keys.Rs256.Kid }));
        Assert.That(reply.Header("X-Sub"), Is.Empty);
        Assert.That(reply.Header("X-Set-Aud"), Is.Empty);
        Assert.That(reply.Header("X-Claims"), Is.Empty);
    }

    [Test]
    public async Task Variables_are_available_in_the_access_log()
    {
        string forged = TokenFactory.Sign(AlgVariant.Get("RS256").Stranger(), TokenFactory.Claims("mallory"));

        await BodyAsync("/logged", new JsonObject { ["sub"] = "logged-user", ["aud"] = new JsonArray("a", "b") });
        await Nginx.GetAsync("/logged", forged);

        // nginx writes the access log line after the response leaves: wait for both lines
        string path = Nginx.Directory + "/jwt-access.log";
        string log = await Poll.UntilAsync(() => System.IO.File.Exists(path) ? System.IO.File.ReadAllText(path) : "",
            l => l.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length >= 2, "two access log lines");

        Assert.That(log.Split('\n', StringSplitOptions.RemoveEmptyEntries), Is.EqualTo(new[]
        {
            $"status=200 sub=logged-user kid={Keys.Rs256.Kid} aud=a,b",
            $"status=401 sub=- kid={Keys.Rs256.Kid} aud=-", // the access log writes "-" for not found
        }));
    }

    [Test]
    public async Task Variables_are_empty_where_auth_jwt_is_off()
    {
        HttpReply reply = await Nginx.GetAsync("/public", Keys.Token());

        Assert.That(reply.Status, Is.EqualTo(200));
        Assert.That(reply.Body, Does.StartWith("sub= kid= claims= now="));
        Assert.That(reply.Body.Length, Is.GreaterThan("sub= kid= claims= now=".Length), "$jwt_nowtime works anywhere");
    }

    [Test]
    public async Task Claim_variable_of_a_missing_claim_is_empty()
    {
        Assert.That(await BodyAsync("/types", []), Does.EndWith(" x="));
    }

    [Test]
    public void Claims_helper_sets_exp_in_the_future()
    {
        Assert.That((long)TokenFactory.Claims()["exp"]!, Is.GreaterThan(DateTimeOffset.UtcNow.ToUnixTimeSeconds()));
    }
}
