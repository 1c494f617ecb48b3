using System;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Sts;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// A key request, introspection or exchange answer that did not arrive whole
/// is a failure (500 for keys; 502 for introspection and exchange, the IdP's
/// answer was unusable) even when the bytes that did arrive are complete JSON:
/// a Content-Length larger than the body before the server closes, and a
/// chunked body whose last chunk never comes. nginx logs "upstream
/// prematurely closed connection" for both; the module must not use the
/// body. The same servers answering whole give 200 (the control cases).
/// </summary>
[TestFixture]
public sealed class IncompleteAnswerTests : NginxFixture
{
    private FaultyServer _server = null!;

    protected override Task StartNginx(NginxInstance nginx)
    {
        _server = FaultyServer.Start();
        string echo = nginx.Echo("sub=$jwt_claim_sub$oauth2_token_sub");
        nginx.Start($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location /_keys/ { internal; auth_jwt off; proxy_pass {{_server.BaseUrl}}/; }
                location = /_introspect { internal; proxy_pass {{_server.BaseUrl}}/introspect; }
                location = /_token { internal; proxy_pass {{_server.BaseUrl}}/token; }
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_token_endpoint /_token;

                location /jwt {
                    auth_jwt "keys";
                    auth_jwt_key_request /_keys/jwks;
                    auth_jwt_key_cache 0; # every answer fetched, not cached
                    {{echo}}
                }
                location /jwt-cached {
                    auth_jwt "keys";
                    auth_jwt_key_request /_keys/jwks;
                    auth_jwt_key_cache 0; # every answer fetched, not cached
                    auth_jwt_verify_cache zone=ia:1m;
                    {{echo}}
                }
                location /i { auth_oauth2_token_introspect on; {{echo}} }
                location /ic {
                    auth_oauth2_token_introspect on;
                    auth_oauth2_token_introspect_cache zone=iai:1m;
                    {{echo}}
                }
                location /x { auth_oauth2_token_exchange on; {{echo}} }
                location /xc {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_exchange_cache zone=iax:1m;
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    protected override async Task OnStopping() => await _server.DisposeAsync();

    private static string Jwks => TokenFactory.Jwks(Keys.Rs256);

    private static string Introspection =>
        "{\"active\":true,\"sub\":\"alice\",\"exp\":" + (DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 3600) + "}";

    private static Fault Mode(string kind, string json) => kind switch
    {
        "whole" => Fault.WithStatus(200, json),
        "truncated" => Fault.Truncated(json),
        "unterminated-chunked" => Fault.ChunkedWithoutLastChunk(json),
        _ => throw new ArgumentException(kind),
    };

    private static string Bearer(string what) => what + "-" + Guid.NewGuid().ToString("N");

    private async Task Expect(string path, string token, string kind, int status)
    {
        HttpReply reply = await Nginx.GetAsync(path, token);
        Assert.That(reply.Status, Is.EqualTo(status), $"{kind} answer on {path}: {reply}");
        if (status >= 500)
        {
            Nginx.WaitForLogLine(TestLogMark, @"\[error\].*did not arrive whole");
        }
    }

    [TestCase("whole", 200)]
    [TestCase("truncated", 500)]
    [TestCase("unterminated-chunked", 500)]
    public async Task Key_request_answer(string kind, int status)
    {
        _server.Mode = Mode(kind, Jwks);
        string token = TokenFactory.Sign(Keys.Rs256, TokenFactory.Claims("keys-" + kind));

        await Expect("/jwt", token, kind, status);
        await Expect("/jwt-cached", token, kind, status);
        await Expect("/jwt-cached", token, kind, status);
    }

    [TestCase("whole", 200)]
    [TestCase("truncated", 502)]
    [TestCase("unterminated-chunked", 502)]
    public async Task Introspection_answer(string kind, int status)
    {
        _server.Mode = Mode(kind, Introspection);
        string token = Bearer("intro-" + kind);

        await Expect("/i", token, kind, status);
        await Expect("/ic", token, kind, status);
        await Expect("/ic", token, kind, status);
    }

    [TestCase("whole", 200)]
    [TestCase("truncated", 502)]
    [TestCase("unterminated-chunked", 502)]
    public async Task Exchange_answer(string kind, int status)
    {
        _server.Mode = Mode(kind, Fault.TokenJson);
        string token = Bearer("exchange-" + kind);

        await Expect("/x", token, kind, status);
        await Expect("/xc", token, kind, status);
        await Expect("/xc", token, kind, status);
    }
}
