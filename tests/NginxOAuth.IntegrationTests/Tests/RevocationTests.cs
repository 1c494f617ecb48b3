using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>auth_jwt_revocation_list_sub and auth_jwt_revocation_list_kid.</summary>
[TestFixture]
public sealed class RevocationTests : NginxFixture
{
    private static SigningKey Rsa(int slot) => AlgVariant.Get("RS256").Key(slot);

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(Rsa(0), Rsa(1), Rsa(2)));
        nginx.WriteFile("subs.json", """
            {
                "lockedsub1": {"locked_at": "2023"},
                "lockedsub2": {"locked_reason": "bad user"},
                "lockedsub3": {"any_other_property": 1}
            }
            """);
        nginx.WriteFile("more-subs.json", """{"lockedsub4": null}""");
        nginx.WriteFile("kids.json", "{\"" + Rsa(1).Kid + "\": {\"revocation_reason\": \"unknown\"}}");
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "revocation";
                auth_jwt_key_file keys.jwks;

                location /sub { auth_jwt_revocation_list_sub subs.json; {{echo}} }
                location /kid { auth_jwt_revocation_list_kid kids.json; {{echo}} }
                location /two-files {
                    auth_jwt_revocation_list_sub subs.json;
                    auth_jwt_revocation_list_sub more-subs.json;
                    {{echo}}
                }
                location /parent {
                    auth_jwt_revocation_list_sub subs.json;
                    {{echo}}
                    location /parent/child {
                        auth_jwt_revocation_list_sub more-subs.json;
                        auth_jwt_revocation_list_kid kids.json;
                        {{echo}}
                    }
                }
            }
            """);
        return Task.CompletedTask;
    }

    private async Task<int> StatusAsync(string path, string? sub, int slot = 0, bool withKid = true)
    {
        JsonObject claims = TokenFactory.Claims(sub ?? "x");
        if (sub is null)
        {
            claims.Remove("sub");
        }

        HttpReply reply = await Nginx.GetAsync(path, TokenFactory.Sign(Rsa(slot), claims, withKid: withKid));
        if (reply.Status == 401)
        {
            Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"revocation\", error=\"invalid_token\""));
        }

        return reply.Status;
    }

    [TestCase("lockedsub1")]
    [TestCase("lockedsub2")]
    [TestCase("lockedsub3")]
    public async Task Revoked_sub_is_rejected_with_401(string sub)
    {
        Assert.That(await StatusAsync("/sub", sub), Is.EqualTo(401));
    }

    [Test]
    public async Task Revoked_sub_is_logged_at_info()
    {
        await StatusAsync("/sub", "lockedsub1");

        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*auth_jwt: rejected: sub is revoked");
    }

    [TestCase("alice")]
    [TestCase("lockedsub")]
    [TestCase("LOCKEDSUB1")]
    [TestCase("locked_at")]
    public async Task Other_sub_is_accepted(string sub)
    {
        Assert.That(await StatusAsync("/sub", sub), Is.EqualTo(200));
    }

    [Test]
    public async Task Token_without_sub_is_rejected_where_a_sub_list_is_set()
    {
        Assert.That(await StatusAsync("/sub", null), Is.EqualTo(401));
        Assert.That(await StatusAsync("/kid", null), Is.EqualTo(200), "no sub list there");
    }

    [Test]
    public async Task Revoked_kid_is_rejected_with_401()
    {
        Assert.That(await StatusAsync("/kid", "alice", slot: 1), Is.EqualTo(401));
        Assert.That(await StatusAsync("/kid", "alice", slot: 0), Is.EqualTo(200));
        Assert.That(await StatusAsync("/kid", "alice", slot: 2), Is.EqualTo(200));
    }

    [Test]
    public async Task Token_without_kid_is_rejected_where_a_kid_list_is_set()
    {
        Assert.That(await StatusAsync("/kid", "alice", withKid: false), Is.EqualTo(401));
        Assert.That(await StatusAsync("/sub", "alice", withKid: false), Is.EqualTo(200), "no kid list there");
    }

    [Test]
    public async Task Several_lists_on_one_level_are_joined()
    {
        Assert.That(await StatusAsync("/two-files", "lockedsub2"), Is.EqualTo(401));
        Assert.That(await StatusAsync("/two-files", "lockedsub4"), Is.EqualTo(401));
        Assert.That(await StatusAsync("/two-files", "alice"), Is.EqualTo(200));
    }

    [Test]
    public async Task Lists_of_the_parent_level_apply_in_nested_locations()
    {
        Assert.That(await StatusAsync("/parent/child", "lockedsub1"), Is.EqualTo(401));
        Assert.That(await StatusAsync("/parent/child", "lockedsub4"), Is.EqualTo(401));
        Assert.That(await StatusAsync("/parent/child", "alice", slot: 1), Is.EqualTo(401));
        Assert.That(await StatusAsync("/parent/child", "alice"), Is.EqualTo(200));
        Assert.That(await StatusAsync("/parent", "lockedsub4"), Is.EqualTo(200), "the child's list stays in the child");
    }
}
