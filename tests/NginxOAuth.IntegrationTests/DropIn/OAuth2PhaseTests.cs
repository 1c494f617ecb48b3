using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>auth_oauth2_token_phase access | preaccess (nginx-auth-oauth2-token 0.4).</summary>
[TestFixture]
public sealed class OAuth2PhaseTests : NginxFixture
{
    private FakeIdp _idp = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        string echo = nginx.Echo("sub=$oauth2_token_sub");
        nginx.Start($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
                auth_oauth2_token_introspect_endpoint /_introspect;

                location /default { auth_oauth2_token_introspect on; {{echo}} }
                location /access {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_phase access;
                    {{echo}}
                }
                location /preaccess {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_phase preaccess;
                    {{echo}}
                }
                location /access-satisfy-any {
                    satisfy any;
                    allow all;
                    auth_oauth2_token_introspect on;
                    {{echo}}
                }
                location /preaccess-satisfy-any {
                    satisfy any;
                    allow all;
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_phase preaccess;
                    {{echo}}
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

    [TestCase("/default", TestName = "Default_phase_introspects_and_sets_the_variables")]
    [TestCase("/access", TestName = "Access_phase_introspects_and_sets_the_variables")]
    [TestCase("/preaccess", TestName = "Preaccess_phase_introspects_and_sets_the_variables")]
    public async Task Phase_introspects_once_and_sets_the_variables(string path)
    {
        string token = "tok-phase" + path.Replace('/', '-');
        HttpReply reply = await Nginx.GetAsync(path, token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=user-" + token));
        Assert.That(_idp.Calls("/introspect", token), Is.EqualTo(1), "one phase handler acts, not both");
    }

    [Test]
    public async Task In_the_access_phase_satisfy_any_lets_another_module_grant()
    {
        Assert.That((await Nginx.GetAsync("/access-satisfy-any")).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task In_the_preaccess_phase_satisfy_any_does_not_apply()
    {
        HttpReply reply = await Nginx.GetAsync("/preaccess-satisfy-any");

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
    }
}
