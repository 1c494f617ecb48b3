using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NginxOAuth.IntegrationTests.Tests;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>
/// Bug: $oauth2_token_new_token_type held issued_token_type, so
/// "Authorization: $oauth2_token_new_token_type $oauth2_token_new_token"
/// was not a usable header.
/// </summary>
[TestFixture]
public sealed class ExchangeTokenTypeTests : NginxFixture
{
    private FakeIdp _idp = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        nginx.Start($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                location = /_token { internal; proxy_pass {{_idp.BaseUrl}}/token; }
                location /exchange {
                    auth_oauth2_token_token_endpoint /_token;
                    auth_oauth2_token_exchange on;
                    {{nginx.Echo("$oauth2_token_new_token_type $oauth2_token_new_token")}}
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        if (_idp is not null)
        {
            await _idp.DisposeAsync();
        }
    }

    [Test]
    public async Task New_token_type_is_the_token_type_of_the_response()
    {
        HttpReply reply = await Nginx.GetAsync("/exchange", "tok-dropin-1");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("Bearer x.tok-dropin-1.."), "a usable Authorization value");
    }
}
