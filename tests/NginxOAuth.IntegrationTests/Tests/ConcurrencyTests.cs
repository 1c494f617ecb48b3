using System;
using System.Linq;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// Per-request state lives in the request: many concurrent requests with
/// different tokens on one location never see each other's claims, also
/// while their key subrequests overlap.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ConcurrencyTests : NginxFixture
{
    private const int Requests = 200;
    private const int Subjects = 20;

    private static readonly SigningKey FileKey = AlgVariant.Get("ES256").Key(0);
    private static readonly SigningKey RequestKey = AlgVariant.Get("RS256").Key(0);

    private FakeHttpServer _keys = null!;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _keys = await FakeHttpServer.StartAsync();
        // slow enough that the key subrequests of concurrent requests overlap
        _keys.Set("/jwks", FakeResponse.Delayed(TimeSpan.FromMilliseconds(50), TokenFactory.Jwks(RequestKey)));
        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(FileKey));
        string echo = nginx.Echo("sub=$jwt_claim_sub groups=$jwt_claim_groups kid=$jwt_header_kid claims=$jwt_claims");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "concurrent";

                location /file { auth_jwt_key_file keys.jwks; {{echo}} }
                location /request { auth_jwt_key_request /_keys/jwks; auth_jwt_key_cache 0; {{echo}} }
                location /require {
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_require_claim sub eq $http_x_expected_sub;
                    {{echo}}
                }

                location /_keys/ {
                    internal;
                    auth_jwt off;
                    proxy_pass {{_keys.BaseUrl}}/;
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

    private static (string Sub, string Token) Make(SigningKey key, int i)
    {
        string sub = $"user-{i % Subjects:D2}";
        JsonObject claims = TokenFactory.Claims(sub, new JsonObject { ["groups"] = new JsonArray($"g-{sub}", "common") });
        return (sub, TokenFactory.Sign(key, claims));
    }

    private static string Expected(string sub, SigningKey key) => $"sub={sub} groups=g-{sub},common kid={key.Kid} claims=";

    private async Task RunAsync(string path, SigningKey key)
    {
        var tokens = Enumerable.Range(0, Requests).Select(i => Make(key, i)).ToArray();
        string forged = TokenFactory.Sign(AlgVariant.Get(key.Alg).Stranger(), TokenFactory.Claims("forged"));

        // every fifth request carries a forged token: it must get 401 and no claims
        HttpReply[] replies = await Task.WhenAll(tokens.Select((t, i) =>
            Nginx.GetAsync(path, i % 5 == 4 ? forged : t.Token)));

        var wrong = Enumerable.Range(0, Requests).Where(i => i % 5 == 4
            ? replies[i].Status != 401 || replies[i].Body.Contains("sub=user-", StringComparison.Ordinal)
            : replies[i].Status != 200 || !replies[i].Body.StartsWith(Expected(tokens[i].Sub, key), StringComparison.Ordinal)
                || !replies[i].Body.Contains($"\"sub\":\"{tokens[i].Sub}\"", StringComparison.Ordinal))
            .Select(i => $"#{i} ({tokens[i].Sub}): {replies[i]}")
            .ToList();

        Assert.That(wrong, Is.Empty, $"{wrong.Count} of {Requests} answers were not their own");
    }

    [Test]
    public async Task Concurrent_requests_with_different_tokens_each_see_only_their_own_claims()
    {
        await RunAsync("/file", FileKey);
    }

    [Test]
    public async Task Concurrent_requests_with_overlapping_key_subrequests_each_see_only_their_own_claims()
    {
        int before = _keys.Count("/jwks");

        await RunAsync("/request", RequestKey);

        Assert.That(_keys.Count("/jwks") - before, Is.EqualTo(Requests), "one key request per protected request");
    }

    [Test]
    public async Task Concurrent_rule_values_from_request_headers_stay_with_their_request()
    {
        var tokens = Enumerable.Range(0, Requests).Select(i => Make(FileKey, i)).ToArray();

        // odd requests expect a sub that is not theirs: exactly those fail
        HttpReply[] replies = await Task.WhenAll(tokens.Select((t, i) =>
            Nginx.GetAsync("/require", t.Token, configure: r => r.Headers.TryAddWithoutValidation("X-Expected-Sub",
                $"\"{(i % 2 == 0 ? t.Sub : "someone-else")}\""))));

        var wrong = Enumerable.Range(0, Requests)
            .Where(i => replies[i].Status != (i % 2 == 0 ? 200 : 401))
            .Select(i => $"#{i}: {replies[i]}")
            .ToList();
        Assert.That(wrong, Is.Empty);
    }
}
