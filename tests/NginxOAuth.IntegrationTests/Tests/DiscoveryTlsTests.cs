using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Sts;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// auth_jwt_discovery of an https issuer through the generated route: a
/// TLS IdP on 127.0.0.1 (Kestrel, server certificate of a test CA) serves
/// the metadata and the key set; with ssl_verify=on and ca_file= of that
/// CA its tokens are accepted; with another CA the TLS handshake fails, the
/// request ends with 500 and an [error] line, and no token is accepted.
/// The IdP records the SNI of each handshake: for an IP-literal issuer
/// nginx sends none (RFC 6066), the certificate is still checked against
/// the issuer's host (here its IP SAN / CN 127.0.0.1).
/// </summary>
[TestFixture]
public sealed class DiscoveryTlsTests : NginxFixture
{
    private static readonly SigningKey Key = AlgVariant.Get("RS256").Key(0);

    private WebApplication _idp = null!;
    private int _port;
    private readonly ConcurrentDictionary<string, string> _docs = new();
    private readonly ConcurrentDictionary<string, int> _counts = new();
    private readonly ConcurrentQueue<string> _sni = new();

    private string Issuer(string realm) => $"https://127.0.0.1:{_port}/realms/{realm}";

    private int Count(string path) => _counts.TryGetValue(path, out int n) ? n : 0;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        TestCa ca = TestCa.Create();
        TestCa other = TestCa.Create();
        string caFile = nginx.WriteFile("tls/ca.pem", ca.CaPem);
        string otherFile = nginx.WriteFile("tls/other-ca.pem", other.CaPem);

        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, 0, listen => listen.UseHttps(https =>
            {
                https.ServerCertificateSelector = (_, name) =>
                {
                    _sni.Enqueue(name ?? "");
                    return ca.Server;
                };
            }));
            o.AddServerHeader = false;
        });
        builder.Services.AddLogging(l => l.ClearProviders());
        _idp = builder.Build();
        _idp.Run(async context =>
        {
            string path = context.Request.Path.Value ?? "";
            _counts.AddOrUpdate(path, 1, (_, n) => n + 1);
            if (!_docs.TryGetValue(path, out string? body))
            {
                context.Response.StatusCode = 404;
                return;
            }

            byte[] bytes = Encoding.UTF8.GetBytes(body);
            context.Response.ContentType = "application/json";
            context.Response.ContentLength = bytes.Length;
            await context.Response.Body.WriteAsync(bytes);
        });
        await _idp.StartAsync();
        string address = _idp.Services.GetRequiredService<IServer>().Features
            .Get<IServerAddressesFeature>()!.Addresses.First();
        _port = new Uri(address).Port;

        foreach (string realm in new[] { "good", "wrong", "system", "prov" })
        {
            _docs[$"/realms/{realm}/.well-known/openid-configuration"] = new JsonObject
            {
                ["issuer"] = Issuer(realm),
                ["jwks_uri"] = Issuer(realm) + "/certs",
            }.ToJsonString();
            _docs[$"/realms/{realm}/certs"] = TokenFactory.Jwks(Key);
        }

        nginx.AllowLogLines("discovery");
        nginx.AllowLogLines("key request");
        nginx.AllowLogLines("no usable key set");

        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "tls";

                location /good {
                    auth_jwt_discovery {{Issuer("good")}} ssl_verify=on ca_file={{caFile}};
                    {{echo}}
                }
                location /system {
                    auth_jwt_discovery {{Issuer("system")}};
                    auth_jwt_key_refresh miss=1s;
                    {{echo}}
                }
                location /prov {
                    auth_jwt_provider {{Issuer("prov")}} discovery discovery_ca_file={{caFile}};
                    {{echo}}
                }
                location /wrong {
                    auth_jwt_discovery {{Issuer("wrong")}} ssl_verify=on ca_file={{otherFile}};
                    auth_jwt_key_refresh miss=1s;
                    {{echo}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private string Token(string realm) =>
        TokenFactory.Sign(Key, TokenFactory.Claims("alice", new JsonObject { ["iss"] = Issuer(realm) }));

    [Test]
    public async Task A_token_of_an_https_issuer_is_accepted_through_the_verified_generated_route()
    {
        HttpReply reply = await Nginx.GetAsync("/good", Token("good"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(reply.Body, Is.EqualTo("sub=alice"));
        Assert.That(Count("/realms/good/.well-known/openid-configuration"), Is.EqualTo(1));
        Assert.That(Count("/realms/good/certs"), Is.EqualTo(1));

        // a token of another issuer is not accepted on this location
        Assert.That((await Nginx.GetAsync("/good", Token("wrong"))).Status, Is.EqualTo(401));

        // an IP-literal issuer: nginx sends no SNI (RFC 6066 forbids IP literals there)
        Assert.That(_sni, Is.Not.Empty, "the IdP saw TLS handshakes");
        Assert.That(_sni, Is.All.Empty, "no server name for an IP-literal issuer");
    }

    [Test]
    public async Task With_verification_on_and_another_ca_the_fetch_fails_and_no_token_is_accepted()
    {
        for (int i = 0; i < 3; i++)
        {
            HttpReply reply = await Nginx.GetAsync("/wrong", Token("wrong"));
            Assert.That(reply.Status, Is.EqualTo(500), "the key set cannot be fetched: never 200, never 401");
        }

        Assert.That(Count("/realms/wrong/.well-known/openid-configuration"), Is.EqualTo(0),
            "the handshake failed: the IdP answered nothing");
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*(certificate verify|SSL_do_handshake)");
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: .*(no usable key set|failed)");
    }

    [Test]
    public async Task Verification_is_on_by_default_against_the_system_bundle()
    {
        HttpReply reply = await Nginx.GetAsync("/system", Token("system"));

        Assert.That(reply.Status, Is.EqualTo(500), "a test CA is not in the system bundle");
        Assert.That(Count("/realms/system/.well-known/openid-configuration"), Is.EqualTo(0));
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*(certificate verify|SSL_do_handshake)");
    }

    [Test]
    public async Task A_provider_discovers_its_https_issuer_with_its_own_ca_file()
    {
        HttpReply reply = await Nginx.GetAsync("/prov", Token("prov"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(Count("/realms/prov/.well-known/openid-configuration"), Is.EqualTo(1));
        Assert.That(Count("/realms/prov/certs"), Is.EqualTo(1));
        Assert.That((await Nginx.GetAsync("/prov", Token("good"))).Status, Is.EqualTo(401), "no provider for that iss");
    }
}
