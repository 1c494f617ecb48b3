using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tests;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>auth_jwt_www_authenticate on | off | string (nginx-auth-jwt 0.13).</summary>
[TestFixture]
public sealed class WwwAuthenticateTests : NginxFixture
{
    private int _inheritPort;

    protected override Task StartNginx(NginxInstance nginx)
    {
        _inheritPort = NginxInstance.NewPort();
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt_key_file keys.jwks;
                set $mcp_scope "mcp:read";
                set $mcp_metadata "https://rs.example.com/.well-known/oauth-protected-resource";

                location /default { auth_jwt "test-realm"; {{echo}} }
                location /on { auth_jwt "test-realm"; auth_jwt_www_authenticate on; {{echo}} }
                location /off { auth_jwt "test-realm"; auth_jwt_www_authenticate off; {{echo}} }
                location /static {
                    auth_jwt "test-realm";
                    auth_jwt_www_authenticate 'Bearer resource_metadata="https://rs.example.com/meta", scope="mcp:read"';
                    {{echo}}
                }
                location /variables {
                    auth_jwt "test-realm";
                    auth_jwt_www_authenticate 'Bearer resource_metadata="$mcp_metadata", scope="$mcp_scope"';
                    {{echo}}
                }
                location /empty-value {
                    auth_jwt "test-realm";
                    auth_jwt_www_authenticate $arg_challenge;
                    {{echo}}
                }
                location /forbidden {
                    auth_jwt "test-realm";
                    auth_jwt_www_authenticate 'Bearer error="insufficient_scope", scope="admin"';
                    auth_jwt_require $arg_grant error=403;
                    {{echo}}
                }
                location /mcp {
                    auth_jwt "test-realm";
                    auth_jwt_www_authenticate off;
                    error_page 401 = @unauthorized;
                    {{echo}}
                }
                location @unauthorized {
                    internal;
                    add_header WWW-Authenticate 'Bearer resource_metadata="https://rs.example.com/meta"' always;
                    return 401;
                }
            }

            server {
                listen 127.0.0.1:{{_inheritPort}};
                auth_jwt_key_file keys.jwks;
                auth_jwt_www_authenticate off;
                location / { auth_jwt "inherited"; {{echo}} }
                location /strict { auth_jwt "strict-realm"; auth_jwt_www_authenticate on; {{echo}} }
            }
            """);
        return Task.CompletedTask;
    }

    [TestCase("/default", "Bearer realm=\"test-realm\", error=\"invalid_token\"", TestName = "Default_is_on")]
    [TestCase("/on", "Bearer realm=\"test-realm\", error=\"invalid_token\"", TestName = "On_sends_realm_and_error")]
    [TestCase("/off", null, TestName = "Off_sends_nothing_for_a_bad_token")]
    [TestCase("/static", "Bearer resource_metadata=\"https://rs.example.com/meta\", scope=\"mcp:read\"", TestName = "String_is_sent_as_is")]
    [TestCase("/variables", "Bearer resource_metadata=\"https://rs.example.com/.well-known/oauth-protected-resource\", scope=\"mcp:read\"",
        TestName = "String_with_variables_is_expanded")]
    [TestCase("/empty-value", null, TestName = "String_that_expands_to_nothing_sends_nothing")]
    [TestCase("/mcp", "Bearer resource_metadata=\"https://rs.example.com/meta\"", TestName = "Off_leaves_the_header_to_an_error_page")]
    public async Task Challenge_for_a_bad_token(string path, string? challenge)
    {
        HttpReply reply = await Nginx.GetAsync(path, "TOKEN");

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo(challenge));
    }

    [TestCase("/off", null, TestName = "Off_sends_nothing_for_a_missing_token")]
    [TestCase("/static", "Bearer resource_metadata=\"https://rs.example.com/meta\", scope=\"mcp:read\"",
        TestName = "String_is_sent_for_a_missing_token_too")]
    [TestCase("/default", "Bearer realm=\"test-realm\"", TestName = "On_sends_the_realm_without_error_for_a_missing_token")]
    public async Task Challenge_for_a_missing_token(string path, string? challenge)
    {
        HttpReply reply = await Nginx.GetAsync(path);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo(challenge));
    }

    [TestCase("/off", TestName = "No_challenge_on_success_with_off")]
    [TestCase("/default", TestName = "No_challenge_on_success_with_on")]
    [TestCase("/static", TestName = "No_challenge_on_success_with_a_string")]
    public async Task No_challenge_on_success(string path)
    {
        HttpReply reply = await Nginx.GetAsync(path, Keys.Token("alice"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Challenges, Is.Empty);
    }

    [Test]
    public async Task String_is_the_challenge_of_a_403_too()
    {
        HttpReply reply = await Nginx.GetAsync("/forbidden", Keys.Token("alice"));

        Assert.That(reply.Status, Is.EqualTo(403), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"insufficient_scope\", scope=\"admin\""));
    }

    [TestCase("/", null, TestName = "Server_level_off_is_inherited")]
    [TestCase("/strict", "Bearer realm=\"strict-realm\", error=\"invalid_token\"", TestName = "Location_level_on_overrides_it")]
    public async Task Inheritance(string path, string? challenge)
    {
        HttpReply reply = await Nginx.GetAsync(path, "TOKEN", port: _inheritPort);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo(challenge));
    }
}
