using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NginxOAuth.IntegrationTests.Tests;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>Bug: an empty revocation list ({}) failed nginx -t; "nothing revoked yet" is a normal state.</summary>
[TestFixture]
public sealed class EmptyRevocationListTests : NginxFixture
{
    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        nginx.WriteFile("empty.json", "{}");
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "revocation";
                auth_jwt_key_file keys.jwks;

                location /empty-sub-list { auth_jwt_revocation_list_sub empty.json; {{echo}} }
                location /empty-kid-list { auth_jwt_revocation_list_kid empty.json; {{echo}} }
            }
            """);
        return Task.CompletedTask;
    }

    [Test]
    public async Task Empty_sub_revocation_list_loads_and_revokes_nothing()
    {
        HttpReply reply = await Nginx.GetAsync("/empty-sub-list", Keys.Token("alice"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=alice"));
    }

    [Test]
    public async Task Empty_kid_revocation_list_still_makes_kid_mandatory()
    {
        Assert.That((await Nginx.GetAsync("/empty-kid-list", Keys.Token("alice"))).Status, Is.EqualTo(200));
        string noKid = TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims("alice"), withKid: false);
        Assert.That((await Nginx.GetAsync("/empty-kid-list", noKid)).Status, Is.EqualTo(401));
    }
}
