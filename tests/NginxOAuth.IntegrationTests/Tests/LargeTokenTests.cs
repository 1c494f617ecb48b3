using System;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>Big claims are served; oversized and pathological tokens are refused cleanly.</summary>
[TestFixture]
public sealed class LargeTokenTests : NginxFixture
{
    private int _hugePort;

    protected override Task StartNginx(NginxInstance nginx)
    {
        _hugePort = NginxInstance.NewPort();
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                large_client_header_buffers 4 128k;
                auth_jwt "large";
                auth_jwt_key_file keys.jwks;

                location /groups { {{nginx.Echo("$jwt_claim_groups")}} }
                location /claims { {{nginx.Echo("$jwt_claims")}} }
            }

            server {
                listen 127.0.0.1:{{_hugePort}};
                large_client_header_buffers 4 2m;
                auth_jwt "huge";
                auth_jwt_key_file keys.jwks;

                location /p { {{nginx.Echo("sub=$jwt_claim_sub")}} }
                location /query {
                    auth_jwt "huge" token=$arg_t;
                    {{nginx.Echo("sub=$jwt_claim_sub")}}
                }
                location /cookie {
                    auth_jwt "huge" token=$cookie_t;
                    {{nginx.Echo("sub=$jwt_claim_sub")}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    private static string PaddedToken(int payloadBytes, string sub = "big")
    {
        JsonObject claims = TokenFactory.Claims(sub);
        int pad = Math.Max(0, payloadBytes - TokenFactory.Json(claims).Length - 10);
        claims["pad"] = new string('x', pad);
        return TokenFactory.Sign(Keys.Rs256, claims);
    }

    private async Task AssertStillServingAsync()
    {
        HttpReply reply = await Nginx.GetAsync("/p", Keys.Token("next"), port: _hugePort);
        Assert.That((reply.Status, reply.Body), Is.EqualTo((200, "sub=next")), "the next request is served");
    }

    [Test]
    public async Task Groups_claim_with_2000_elements_and_32_KiB_of_claims_is_accepted()
    {
        string[] groups = Enumerable.Range(0, 2000).Select(i => $"group-{i:D4}").ToArray();
        JsonObject claims = TokenFactory.Claims("many-groups", new JsonObject
        {
            ["groups"] = new JsonArray(groups.Select(g => (JsonNode)g).ToArray()),
            ["pad"] = new string('p', 8 * 1024),
        });
        Assert.That(Encoding.UTF8.GetByteCount(TokenFactory.Json(claims)), Is.GreaterThanOrEqualTo(32 * 1024));
        string token = TokenFactory.Sign(Keys.Rs256, claims);

        HttpReply reply = await Nginx.GetAsync("/groups", token);
        HttpReply all = await Nginx.GetAsync("/claims", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.Status + " " + reply.Body[..Math.Min(200, reply.Body.Length)]);
        Assert.That(reply.Body, Is.EqualTo(string.Join(",", groups)));
        Assert.That(all.Status, Is.EqualTo(200));
        Assert.That(JsonNode.DeepEquals(JsonNode.Parse(all.Body), claims), Is.True);
    }

    [Test]
    public async Task Token_of_200_KiB_is_accepted()
    {
        HttpReply reply = await Nginx.GetAsync("/p", PaddedToken(150 * 1024, "200k"), port: _hugePort);

        Assert.That((reply.Status, reply.Body), Is.EqualTo((200, "sub=200k")));
    }

    [Test]
    public async Task One_MiB_bearer_token_is_rejected_cleanly_with_401()
    {
        string token = PaddedToken(768 * 1024);
        Assert.That(token.Length, Is.GreaterThan(1000 * 1024));

        HttpReply reply = await Nginx.GetAsync("/p", token, port: _hugePort);

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"huge\", error=\"invalid_token\""));
        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: token too large");
        await AssertStillServingAsync();
    }

    [Test]
    public async Task One_MiB_token_in_a_query_argument_or_cookie_is_rejected_cleanly_with_401()
    {
        string token = PaddedToken(768 * 1024);

        HttpReply query = await Nginx.GetAsync("/query?t=" + token, port: _hugePort);
        HttpReply cookie = await Nginx.GetAsync("/cookie", port: _hugePort,
            configure: r => r.Headers.TryAddWithoutValidation("Cookie", "t=" + token));

        Assert.That(query.Status, Is.EqualTo(401));
        Assert.That(cookie.Status, Is.EqualTo(401));
        await AssertStillServingAsync();
    }

    [Test]
    public async Task Token_just_over_256_KiB_is_rejected()
    {
        string token = PaddedToken(193 * 1024);
        Assert.That(token.Length, Is.InRange(256 * 1024 + 1, 270 * 1024));

        HttpReply reply = await Nginx.GetAsync("/p", token, port: _hugePort);

        Assert.That(reply.Status, Is.EqualTo(401));
        await AssertStillServingAsync();
    }

    [Test]
    public async Task JOSE_header_over_16_KiB_is_rejected()
    {
        string token = TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims(),
            new JsonObject { ["x"] = new string('h', 17 * 1024) });

        HttpReply reply = await Nginx.GetAsync("/p", token, port: _hugePort);

        Assert.That(reply.Status, Is.EqualTo(401));
        await AssertStillServingAsync();
    }

    [TestCase(100)]
    [TestCase(5000)]
    public async Task Deeply_nested_payload_is_rejected_without_harm(int depth)
    {
        string payload = "{\"sub\":\"deep\",\"exp\":" + (TokenFactory.Now + 3600) + ",\"d\":"
            + new string('[', depth) + new string(']', depth) + "}";
        string token = TokenFactory.SignRaw(Keys.Rs256, "{\"alg\":\"RS256\",\"kid\":\"" + Keys.Rs256.Kid + "\"}", payload);

        HttpReply reply = await Nginx.GetAsync("/p", token, port: _hugePort);

        Assert.That(reply.Status, Is.EqualTo(401));
        await AssertStillServingAsync();
    }

    [Test]
    public async Task Payload_with_duplicate_claims_is_rejected()
    {
        long exp = TokenFactory.Now + 3600;
        string payload = $"{{\"sub\":\"alice\",\"exp\":{exp},\"sub\":\"admin\"}}";
        string token = TokenFactory.SignRaw(Keys.Rs256, "{\"alg\":\"RS256\",\"kid\":\"" + Keys.Rs256.Kid + "\"}", payload);

        HttpReply reply = await Nginx.GetAsync("/p", token, port: _hugePort);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
    }
}
