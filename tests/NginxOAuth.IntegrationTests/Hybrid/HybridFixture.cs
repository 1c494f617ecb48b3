using System.Linq;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.OAuth2;
using NginxOAuth.IntegrationTests.Tokens;

namespace NginxOAuth.IntegrationTests.Hybrid;

/// <summary>
/// What the hybrid fixtures share: a <see cref="FakeIdp"/> (introspection
/// and token endpoints) and a key server, started before nginx and
/// disposed after it; the gateway around a fixture's locations; the IdP's
/// count of a token's introspections and the path a reply took.
/// </summary>
public abstract class HybridFixture : NginxFixture
{
    /// <summary>Sends $oauth_token_path back in X-Path, on refusals too.</summary>
    protected const string PathHeader = "add_header X-Path \"[$oauth_token_path]\" always;";

    protected FakeIdp Idp { get; private set; } = null!;

    /// <summary>Discovery documents and key sets, behind the internal location /_keys/.</summary>
    protected FakeHttpServer KeyServer { get; private set; } = null!;

    protected sealed override async Task StartNginx(NginxInstance nginx)
    {
        Idp = await FakeIdp.StartAsync();
        KeyServer = await FakeHttpServer.StartAsync();
        StartGateway(nginx);
    }

    /// <summary>Fills <see cref="KeyServer"/>, writes key files into <c>nginx.Directory</c> and starts nginx.</summary>
    protected abstract void StartGateway(NginxInstance nginx);

    protected sealed override async Task OnStopping()
    {
        if (Idp is not null)
        {
            await Idp.DisposeAsync();
        }
        if (KeyServer is not null)
        {
            await KeyServer.DisposeAsync();
        }
    }

    /// <summary>
    /// The http-level configuration of a hybrid gateway: the client's
    /// credentials and one server with the introspection endpoint (the
    /// IdP, read with 60 s), its cache zone <paramref name="zone"/>,
    /// /_keys/ and <paramref name="locations"/>.
    /// </summary>
    protected string Gateway(NginxInstance nginx, string zone, string locations) => $$"""
        auth_oauth2_token_client_id gw;
        auth_oauth2_token_client_secret s;

        server {
            listen 127.0.0.1:{{nginx.Port}};

            location = /_introspect {
                internal;
                proxy_read_timeout 60s;
                proxy_pass {{Idp.BaseUrl}}/introspect;
            }
            auth_oauth2_token_introspect_endpoint /_introspect;
            auth_oauth2_token_introspect_cache zone={{zone}}:1m max_ttl=600s;
            location /_keys/ { internal; proxy_pass {{KeyServer.BaseUrl}}/; }

            {{locations}}
        }
        """;

    /// <summary>
    /// A hybrid location: auth_jwt with <paramref name="keys"/>,
    /// introspection, then <paramref name="extra"/> and
    /// "auth_jwt_introspect <paramref name="mode"/>"; the path in X-Path.
    /// </summary>
    protected static string HybridLocation(string path, string keys, string mode, string echo, string extra = "") => $$"""
        location {{path}} {
            auth_jwt "api";
            {{keys}}
            auth_oauth2_token_introspect on;
            {{extra}}
            auth_jwt_introspect {{mode}};
            {{PathHeader}}
            {{echo}}
        }
        """;

    protected int Introspections(string token) => Idp.Calls("/introspect", token);

    protected static string PathOf(HttpReply reply) => reply.Header("X-Path").SingleOrDefault() ?? "(none)";
}

/// <summary>
/// The nginx -t fixtures' gateway: the client's credentials, an
/// introspection endpoint nothing answers, a key file keys.jwks, and a
/// location /api that echoes $oauth_token_path.
/// </summary>
internal static class HybridConfig
{
    public static void Configure(NginxInstance nginx, string location, string server = "")
    {
        nginx.WriteFile("keys.jwks", TokenFactory.Jwks(AlgVariant.Get("RS256").Key(0)));
        nginx.Configure($$"""
            auth_oauth2_token_client_id gw;
            auth_oauth2_token_client_secret s;
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location = /_i { internal; proxy_pass http://127.0.0.1:1/; }
                auth_oauth2_token_introspect_endpoint /_i;
                {{server}}
                location /api {
                    {{location.Replace("\n", "\n            ", System.StringComparison.Ordinal)}}
                    {{nginx.Echo("$oauth_token_path")}}
                }
            }
            """);
    }
}
