using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>auth_jwt_allow_nested (delimiter, quote) and JQ-like paths.</summary>
[TestFixture]
public sealed class NestedClaimTests : NginxFixture
{
    private static readonly JsonObject Payload = TokenFactory.Claims("alice", (JsonObject)JsonNode.Parse("""
        {
            "grants": { "access": "allow", "level": 3 },
            "grants.key": "dot",
            "grants.access": "flat",
            "a/b": "slash",
            "a": { "b": { "c": { "d": 4 } } },
            "roles": ["reader", "writer"],
            "m": [[1, 2], [3, 4]]
        }
        """)!);

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "nested";
                auth_jwt_key_file keys.jwks;

                location /nested {
                    auth_jwt_allow_nested;
                    auth_jwt_require_claim grants.access eq allow;
                    {{echo}}
                }
                location /nested-number {
                    auth_jwt_allow_nested;
                    auth_jwt_require_claim grants.level ge json=3;
                    {{echo}}
                }
                location /quoted {
                    auth_jwt_allow_nested;
                    auth_jwt_require_claim '"grants.key"' eq dot;
                    {{echo}}
                }
                location /custom {
                    auth_jwt_allow_nested delimiter=/ quote=|;
                    auth_jwt_require_claim grants/access eq allow;
                    auth_jwt_require_claim |a/b| eq slash;
                    {{echo}}
                }
                location /deep {
                    auth_jwt_allow_nested;
                    auth_jwt_require_claim a.b.c.d eq json=4;
                    {{echo}}
                }
                location /flat {
                    auth_jwt_require_claim grants.access eq flat;
                    {{echo}}
                }
                location /jq {
                    auth_jwt_require_claim .grants.access eq allow;
                    {{echo}}
                }
                location /jq-index {
                    auth_jwt_require_claim .roles[1] eq writer;
                    auth_jwt_require_claim .m[1][0] eq json=3;
                    auth_jwt_require_claim '."grants.key"' eq dot;
                    {{echo}}
                }
                location /nested-header {
                    auth_jwt_allow_nested;
                    auth_jwt_require_header ext.name eq x;
                    {{echo}}
                }
                location /nested-variable {
                    auth_jwt_allow_nested delimiter=_;
                    {{nginx.Echo("access=$jwt_claim_grants_access level=$jwt_claim_grants_level")}}
                }
                location /inherited {
                    auth_jwt_allow_nested delimiter=/;
                    location /inherited/child {
                        auth_jwt_require_claim grants/access eq allow;
                        {{echo}}
                    }
                }
            }
            """);
        return Task.CompletedTask;
    }

    private async Task<int> StatusAsync(string path, JsonObject? payload = null, JsonObject? header = null) =>
        (await Nginx.GetAsync(path, TokenFactory.Sign(Keys.Rs256, payload ?? Payload, header))).Status;

    private static JsonObject With(string name, JsonNode value)
    {
        JsonObject p = Payload.DeepClone().AsObject();
        p[name] = value;
        return p;
    }

    [Test]
    public async Task Delimiter_path_reaches_a_nested_claim()
    {
        Assert.That(await StatusAsync("/nested"), Is.EqualTo(200));
        Assert.That(await StatusAsync("/nested", With("grants", new JsonObject { ["access"] = "deny" })), Is.EqualTo(401));
        Assert.That(await StatusAsync("/nested-number"), Is.EqualTo(200));
    }

    [Test]
    public async Task Quoted_segment_is_taken_literally()
    {
        Assert.That(await StatusAsync("/quoted"), Is.EqualTo(200));
        Assert.That(await StatusAsync("/quoted", With("grants.key", "other")), Is.EqualTo(401));
    }

    [Test]
    public async Task Custom_delimiter_and_quote_are_used()
    {
        Assert.That(await StatusAsync("/custom"), Is.EqualTo(200));
        Assert.That(await StatusAsync("/custom", With("a/b", "nope")), Is.EqualTo(401));
    }

    [Test]
    public async Task Deep_path_reaches_the_fourth_level()
    {
        Assert.That(await StatusAsync("/deep"), Is.EqualTo(200));
    }

    [Test]
    public async Task Without_allow_nested_a_dotted_name_is_one_literal_claim()
    {
        Assert.That(await StatusAsync("/flat"), Is.EqualTo(200));
    }

    [Test]
    public async Task Missing_intermediate_object_fails_the_rule()
    {
        JsonObject p = Payload.DeepClone().AsObject();
        p.Remove("grants");

        Assert.That(await StatusAsync("/nested", p), Is.EqualTo(401));
        Assert.That(await StatusAsync("/nested", With("grants", "not an object")), Is.EqualTo(401));
    }

    [Test]
    public async Task JQ_like_path_works_without_allow_nested()
    {
        Assert.That(await StatusAsync("/jq"), Is.EqualTo(200));
        Assert.That(await StatusAsync("/jq-index"), Is.EqualTo(200));
        Assert.That(await StatusAsync("/jq-index", With("roles", new JsonArray("writer", "reader"))), Is.EqualTo(401));
    }

    [Test]
    public async Task Nested_header_rule_reaches_into_the_JOSE_header()
    {
        Assert.That(await StatusAsync("/nested-header", header: new JsonObject { ["ext"] = new JsonObject { ["name"] = "x" } }), Is.EqualTo(200));
        Assert.That(await StatusAsync("/nested-header", header: new JsonObject { ["ext"] = new JsonObject { ["name"] = "y" } }), Is.EqualTo(401));
    }

    [Test]
    public async Task Claim_variable_follows_the_nesting_delimiter()
    {
        HttpReply reply = await Nginx.GetAsync("/nested-variable", TokenFactory.Sign(Keys.Rs256, Payload));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("access=allow level=3"));
    }

    [Test]
    public async Task Allow_nested_is_inherited_by_nested_locations()
    {
        Assert.That(await StatusAsync("/inherited/child"), Is.EqualTo(200));
    }
}
