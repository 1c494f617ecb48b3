using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// The three example locations of OpenIDC's ngx_sts_module README
/// (nginx-conf/sts/seed-*.conf, kept as the seed has them) run with only the
/// addresses substituted: WS-Trust against <see cref="FakeWsTrustSts"/>,
/// ROPC and token exchange against a real authorization server
/// (<see cref="OpenIddictSts"/>); the backend ("echo:8080/headers") is an
/// nginx server answering the headers and arguments it received.  Then the
/// README's source and target recipes, and their one-line equivalents
/// (STSStripSource / STSPassTarget, strip_source= / pass_target=).
/// </summary>
[TestFixture]
public sealed class StsSeedConfigTests : NginxFixture
{
    private FakeWsTrustSts _wsTrust = null!;
    private OpenIddictSts _openIddict = null!;
    private int _echoPort;

    /// <summary>The example locations with only the addresses (and the ROPC/OTX client credentials) substituted.</summary>
    private string Example(string file)
    {
        string text = File.ReadAllText(Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "sts", file));
        // the seed's endpoints are pingfed/keycloak over https; ours are loopback http
        string substituted = text
            .Replace("https://pingfed:9031/pf/sts.wst", _wsTrust.Endpoint, StringComparison.Ordinal)
            .Replace("https://pingfed:9031/as/token.oauth2", _openIddict.TokenEndpoint, StringComparison.Ordinal)
            .Replace("https://keycloak:8443/auth/realms/master/protocol/openid-connect/token", _openIddict.TokenEndpoint,
                StringComparison.Ordinal)
            // OpenIddictSts knows one confidential client (sts-client/sts-secret), not the seed's sts0 and otxclient
            .Replace("client_id=sts0&client_secret=2Federate", $"client_id={OpenIddictSts.ClientId}&client_secret={OpenIddictSts.ClientSecret}",
                StringComparison.Ordinal)
            .Replace("client_id=otxclient&client_secret=2Federate", $"client_id={OpenIddictSts.ClientId}&client_secret={OpenIddictSts.ClientSecret}",
                StringComparison.Ordinal)
            .Replace("http://echo:8080", $"http://127.0.0.1:{_echoPort}", StringComparison.Ordinal);
        Assert.That(substituted, Does.Not.Contain("pingfed:9031").And.Not.Contain("keycloak:8443").And.Not.Contain("echo:8080")
            .And.Not.Contain("sts0").And.Not.Contain("otxclient"), "every address was substituted in " + file);
        return substituted;
    }

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _wsTrust = await FakeWsTrustSts.StartAsync();
        _openIddict = await OpenIddictSts.StartAsync();
        _openIddict.AcceptAnyUser = true; // the ROPC example's username is "dummy"
        _echoPort = NginxInstance.NewPort();
        string url = _wsTrust.Endpoint;
        string echo = $"http://127.0.0.1:{_echoPort}";
        nginx.Start($$"""
            # the seed's "source token retrieval" recipe, named as its examples use it
            map $http_authorization $source_token {
                default "";
                "~*^Bearer\s+(?<token>[\S]+)$" $token;
            }

            # "echo:8080": what the backend received
            server {
                listen 127.0.0.1:{{_echoPort}};
                large_client_header_buffers 4 64k;
                location / {
                    return 200 "uri=$uri\nargs=$args\nauthorization=$http_authorization\ncookie=$http_cookie\nx-target=$http_x_target\nx-source=$http_x_source\n";
                }
            }

            server {
                listen 127.0.0.1:{{nginx.Port}};

            {{Example("seed-wstrust.conf")}}

            {{Example("seed-ropc.conf")}}

            {{Example("seed-otx.conf")}}

                # ---- the seed's recipes around a WS-Trust exchange ----

                location /recipe/remove-authorization {
                    STSExchange wstrust {{url}} "value_type=urn:vt";
                    STSVariables $source_token $r1_target;
                    proxy_set_header Authorization "";
                    proxy_set_header X-Target $r1_target;
                    proxy_pass {{echo}};
                }
                location /recipe/header {
                    STSExchange wstrust {{url}} "value_type=urn:vt";
                    STSVariables $source_token $sts_target_token;
                    proxy_set_header Authorization "Bearer $sts_target_token";
                    proxy_pass {{echo}};
                }
                location /recipe/query {
                    STSExchange wstrust {{url}} "value_type=urn:vt";
                    STSVariables $source_token $sts_target_token;
                    set $sep "";
                    if ($is_args) {
                        set $sep "&";
                    }
                    set $args $args${sep}token=$sts_target_token;
                    proxy_pass {{echo}};
                }

                # ---- the one-line equivalents ----

                location /oneline/authorization-to-header {
                    STSType wstrust;
                    STSWSTrustEndpoint {{url}};
                    STSWSTrustValueType urn:vt;
                    STSVariables $source_token $o1_target;
                    STSStripSource authorization;
                    STSPassTarget header:X-Target;
                    proxy_pass {{echo}};
                }
                location /oneline/cookie-to-cookie {
                    STSType wstrust;
                    STSWSTrustEndpoint {{url}};
                    STSWSTrustValueType urn:vt;
                    STSVariables $cookie_src $o2_target;
                    STSStripSource cookie:src;
                    STSPassTarget cookie:STS_COOKIE;
                    proxy_pass {{echo}};
                }
                location /oneline/query-to-query {
                    STSType wstrust;
                    STSWSTrustEndpoint {{url}};
                    STSWSTrustValueType urn:vt;
                    STSVariables $arg_src $o3_target;
                    STSStripSource query:src;
                    STSPassTarget query:token;
                    proxy_pass {{echo}};
                }
                location /oneline/header-to-bearer {
                    STSType wstrust;
                    STSWSTrustEndpoint {{url}};
                    STSWSTrustValueType urn:vt;
                    STSVariables $http_x_source $o4_target;
                    STSStripSource header:X-Source;
                    STSPassTarget bearer;
                    proxy_pass {{echo}};
                }
                location /options/authorization-to-cookie {
                    STSExchange wstrust {{url}} "value_type=urn:vt&strip_source=authorization&pass_target=cookie:STS_COOKIE";
                    STSVariables $source_token $p1_target;
                    proxy_pass {{echo}};
                }
                location /options/cookie-to-query {
                    STSExchange wstrust {{url}} "value_type=urn:vt&strip_source=cookie:src&pass_target=query:token";
                    STSVariables $cookie_src $p2_target;
                    proxy_pass {{echo}};
                }
                location /options/query-to-authorization {
                    STSExchange wstrust {{url}} "value_type=urn:vt&strip_source=query:src&pass_target=authorization";
                    STSVariables $arg_src $p3_target;
                    proxy_pass {{echo}};
                }
            }
            """);
    }

    protected override async Task OnStopping()
    {
        await _wsTrust.DisposeAsync();
        await _openIddict.DisposeAsync();
    }

    /// <summary>The backend's view: uri, args, authorization, cookie, x-target, x-source.</summary>
    private static Dictionary<string, string> Seen(HttpReply reply)
    {
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        return reply.Body.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2))
            .ToDictionary(p => p[0], p => p[1], StringComparer.Ordinal);
    }

    private Task<HttpReply> GetAsync(string path, string? bearer = null, string? cookie = null, string? xSource = null) =>
        Nginx.GetAsync(path, bearer, configure: r =>
        {
            if (cookie is not null)
            {
                r.Headers.TryAddWithoutValidation("Cookie", cookie);
            }

            if (xSource is not null)
            {
                r.Headers.TryAddWithoutValidation("X-Source", xSource);
            }
        });

    private static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N");

    /// <summary>The target the fake STS issues for <paramref name="source"/> in its binary mode.</summary>
    private string BinaryTarget(string source)
    {
        _wsTrust.SetModeForPrefix(source, WsTrustMode.Binary());
        return WsTrustTokens.BinaryValue(source, WsTrustMode.Binary());
    }

    private async Task<JsonWebToken> ValidateAsync(string jwt)
    {
        var keys = new JsonWebKeySet(await _openIddict.GetJwksAsync());
        TokenValidationResult result = await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = _openIddict.BaseUrl + "/",
            ValidateAudience = false,
            IssuerSigningKeys = keys.GetSigningKeys(),
        });
        Assert.That(result.IsValid, Is.True, "a real access token of the authorization server: " + result.Exception?.Message);
        return (JsonWebToken)result.SecurityToken;
    }

    private static string Cookie(Dictionary<string, string> seen, string name)
    {
        string[] matches = seen["cookie"].Split("; ").Where(c => c.StartsWith(name + "=", StringComparison.Ordinal)).ToArray();
        Assert.That(matches, Has.Length.EqualTo(1), $"one {name} cookie in \"{seen["cookie"]}\"");
        return matches[0][(name.Length + 1)..];
    }

    // ---- the three examples -------------------------------------------------

    [Test]
    public async Task WsTrust_example_sets_the_target_in_the_cookie()
    {
        // no STSWSTrustValueType in the example: the source must be an XML element
        string source = $"<t>{Unique("wsseed-")}</t>";
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync("/sts/wstrust?a=1", source));

        Assert.That(seen["cookie"], Is.EqualTo("STS_COOKIE=" + target));
        Assert.That(seen["uri"], Is.EqualTo("/headers"));
        Assert.That(seen["args"], Is.EqualTo("a=1"));
        WsTrustRequest r = _wsTrust.Requests.Single(x => x.SourceToken == source);
        Assert.That(r.Malformed, Is.False, r.MalformedReason);
        Assert.That(r.SourceTokenIsXml, Is.True);
        Assert.That(r.TokenType, Is.EqualTo("urn:bogus:token"));
        Assert.That(r.AppliesTo, Is.EqualTo("urn:pingfed"));
        Assert.That(r.Authorization, Is.EqualTo("Basic " + Convert.ToBase64String("wstrust:2Federate"u8.ToArray())));
    }

    [Test]
    public async Task Ropc_example_sets_a_real_access_token_for_the_configured_user_in_the_cookie()
    {
        string source = Unique("ropc-source-");

        Dictionary<string, string> seen = Seen(await GetAsync("/sts/ropc", source));

        JsonWebToken token = await ValidateAsync(Cookie(seen, "STS_COOKIE"));
        Assert.That(token.Subject, Is.EqualTo("dummy"), "STSROPCUsername");
        Assert.That(token.GetClaim("src").Value, Is.EqualTo(OpenIddictSts.SourceHash(source)), "the source token was the password");
        StsTokenRequest call = _openIddict.Requests.Single(r => r.SourceToken == source);
        Assert.That(call.GrantType, Is.EqualTo("password"));
        Assert.That(call.Field("username"), Is.EqualTo("dummy"));
        Assert.That(call.Authorization, Is.EqualTo("Basic " + Convert.ToBase64String(
            Encoding.UTF8.GetBytes($"{OpenIddictSts.ClientId}:{OpenIddictSts.ClientSecret}"))));
        Assert.That(call.Field("client_secret"), Is.Null, "client_secret_basic: not in the body");
    }

    [Test]
    public async Task Otx_example_sets_an_exchanged_access_token_in_the_cookie()
    {
        string subject = await _openIddict.IssueAccessTokenAsync(username: "alice", password: Unique("alice-pw-"));

        Dictionary<string, string> seen = Seen(await GetAsync("/sts/otx", subject));

        string target = Cookie(seen, "STS_COOKIE");
        Assert.That(target, Is.Not.EqualTo(subject));
        JsonWebToken token = await ValidateAsync(target);
        Assert.That(token.Subject, Is.EqualTo("alice"), "the exchanged token keeps the subject");
        Assert.That(token.GetClaim("act_client").Value, Is.EqualTo(OpenIddictSts.ClientId));
        StsTokenRequest call = _openIddict.Requests.Single(r => r.SourceToken == subject);
        Assert.That(call.GrantType, Is.EqualTo(OpenIddictSts.TokenExchangeGrant));
        Assert.That(call.Field("subject_token_type"), Is.EqualTo(OpenIddictSts.AccessTokenType));
        Assert.That(call.Status, Is.EqualTo(200), call.ResponseBody);
    }

    [Test]
    public async Task Ropc_example_without_a_source_token_is_401_and_asks_nobody()
    {
        int before = _openIddict.Count;

        HttpReply reply = await GetAsync("/sts/ropc");

        Assert.That(reply.Status, Is.EqualTo(401));
        Assert.That(_openIddict.Count, Is.EqualTo(before));
    }

    // ---- the recipes --------------------------------------------------------

    [Test]
    public async Task Source_token_removal_recipe_keeps_the_source_from_the_backend()
    {
        string source = Unique("rm-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync("/recipe/remove-authorization", source));

        Assert.That(seen["authorization"], Is.Empty);
        Assert.That(seen["x-target"], Is.EqualTo(target));
        Assert.That(_wsTrust.Calls(source), Is.EqualTo(1), "the map read the source before it was removed");
    }

    [Test]
    public async Task Header_target_recipe_replaces_the_authorization()
    {
        string source = Unique("hdr-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync("/recipe/header", source));

        Assert.That(seen["authorization"], Is.EqualTo("Bearer " + target));
    }

    /// <summary>
    /// The seed's query recipe (set $args $args${sep}token=$sts_target_token)
    /// runs in the rewrite phase, before any exchange (the anchor's, in the
    /// access phase, too): with the anchor it appended whatever token an
    /// earlier request had left in the location configuration. Here it
    /// appends an empty token, never another request's (docs/DIRECTIVES.md,
    /// "Differences from ngx_sts_module"); STSPassTarget query:NAME and
    /// pass_target=query:NAME deliver this request's token (tests below).
    /// </summary>
    [Test]
    public async Task Query_target_recipe_runs_before_the_exchange_and_never_appends_another_requests_token()
    {
        string first = Unique("qry1-");
        string second = Unique("qry2-");

        Dictionary<string, string> one = Seen(await GetAsync("/recipe/query?a=1", first));
        Dictionary<string, string> two = Seen(await GetAsync("/recipe/query?a=2", second));

        Assert.That(one["args"], Is.EqualTo("a=1&token="));
        Assert.That(two["args"], Is.EqualTo("a=2&token="), "not the first request's target");
        Assert.That(two["args"], Does.Not.Contain(BinaryTarget(first)));
    }

    // ---- one-line equivalents -----------------------------------------------

    [Test]
    public async Task STSStripSource_authorization_and_STSPassTarget_header()
    {
        string source = Unique("o1-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync("/oneline/authorization-to-header?a=1", source));

        Assert.That(seen["authorization"], Is.Empty, "the source is gone");
        Assert.That(seen["x-target"], Is.EqualTo(target));
        Assert.That(seen["args"], Is.EqualTo("a=1"));
    }

    [Test]
    public async Task STSStripSource_cookie_and_STSPassTarget_cookie()
    {
        string source = Unique("o2-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync("/oneline/cookie-to-cookie", cookie: $"a=1; src={source}; b=2"));

        Assert.That(seen["cookie"], Is.EqualTo($"a=1; b=2; STS_COOKIE={target}"));
    }

    [Test]
    public async Task STSStripSource_query_and_STSPassTarget_query()
    {
        string source = Unique("o3-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync($"/oneline/query-to-query?a=1&src={source}&b=2"));

        Assert.That(seen["args"], Is.EqualTo($"a=1&b=2&token={target}"));
        Assert.That(_wsTrust.Calls(source), Is.EqualTo(1));
    }

    [Test]
    public async Task STSStripSource_header_and_STSPassTarget_bearer()
    {
        string source = Unique("o4-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync("/oneline/header-to-bearer", bearer: "client-own", xSource: source));

        Assert.That(seen["x-source"], Is.Empty);
        Assert.That(seen["authorization"], Is.EqualTo("Bearer " + target), "the client's Authorization is replaced");
    }

    [Test]
    public async Task Options_strip_source_authorization_and_pass_target_cookie()
    {
        string source = Unique("p1-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync("/options/authorization-to-cookie", source, cookie: "keep=1"));

        Assert.That(seen["authorization"], Is.Empty);
        Assert.That(seen["cookie"], Is.EqualTo($"keep=1; STS_COOKIE={target}"));
    }

    [Test]
    public async Task Options_strip_source_cookie_and_pass_target_query()
    {
        string source = Unique("p2-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync("/options/cookie-to-query?x=%20y", cookie: $"src={source}"));

        Assert.That(seen["cookie"], Is.Empty);
        Assert.That(seen["args"], Is.EqualTo($"x=%20y&token={target}"));
    }

    [Test]
    public async Task Options_strip_source_query_and_pass_target_authorization()
    {
        string source = Unique("p3-");
        string target = BinaryTarget(source);

        Dictionary<string, string> seen = Seen(await GetAsync($"/options/query-to-authorization?src={source}"));

        Assert.That(seen["args"], Is.Empty);
        Assert.That(seen["authorization"], Is.EqualTo("Bearer " + target));
    }
}
