using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NginxOAuth.IntegrationTests.Tests;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>
/// Bug: auth_jwt_key_request URIs with variables were evaluated just before
/// each subrequest, after earlier key subrequests had run the server's
/// rewrite phase again on the variables they share with the main request.
/// </summary>
[TestFixture]
public sealed class KeyRequestOrderTests : NginxFixture
{
    private static readonly SigningKey KeyA = AlgVariant.Get("RS256").Key(0);
    private static readonly SigningKey KeyB = AlgVariant.Get("ES256").Key(0);
    private static readonly SigningKey KeyC = AlgVariant.Get("PS256").Key(1);

    private FakeHttpServer _keys = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _keys = await FakeHttpServer.StartAsync();
        _keys.Set("/a.jwks", FakeResponse.Json(TokenFactory.Jwks(KeyA)));
        _keys.Set("/b.jwks", FakeResponse.Json(TokenFactory.Jwks(KeyB)));
        _keys.Set("/c.jwks", FakeResponse.Json(TokenFactory.Jwks(KeyC)));
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                set $k /b.jwks;

                location /three-key-requests {
                    set $k /c.jwks;
                    auth_jwt "keys";
                    auth_jwt_key_request /a.jwks;
                    auth_jwt_key_request /b.jwks;
                    auth_jwt_key_request $k;
                    {{nginx.Echo("sub=$jwt_claim_sub")}}
                }
                location ~ ^/[abc]\.jwks$ {
                    internal;
                    proxy_pass {{_keys.BaseUrl}};
                    subrequest_output_buffer_size 64k;
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        if (_keys is not null)
        {
            await _keys.DisposeAsync();
        }
    }

    [Test]
    public async Task Key_request_uris_are_all_evaluated_before_the_first_key_subrequest()
    {
        // the first two subrequests run the server's "set $k /b.jwks" on the
        // variables they share with the main request; the third URI is the
        // location's value all the same
        HttpReply reply = await Nginx.GetAsync("/three-key-requests", TokenFactory.Sign(KeyC, TokenFactory.Claims("carol")));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=carol"));
        Assert.That(_keys.Count("/c.jwks"), Is.GreaterThanOrEqualTo(1));
    }
}
