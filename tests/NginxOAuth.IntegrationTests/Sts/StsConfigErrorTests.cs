using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// STS* directive mistakes are refused by nginx -t, naming the directive and
/// its file:line (the shim's own checks, the merge, and the managed core's
/// check of the settings); accepted-but-ineffective settings warn; a
/// configuration using every directive of both syntaxes passes.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class StsConfigErrorTests
{
    /// <param name="Http">http-level directives.</param>
    /// <param name="Location">directives of the location /api.</param>
    /// <param name="Name">the directive the message must name (quoted).</param>
    /// <param name="Line">a fragment of the line the message must point at.</param>
    /// <param name="Contains">a fragment the message must hold.</param>
    public sealed record Case(string Http, string Location, string Name, string Line, string Contains);

    private const string Url = "http://127.0.0.1:9/sts";
    private const string Https = "https://127.0.0.1:9/sts";
    private const string Vars = "STSVariables $http_x_source $sts_target;";

    /// <summary>A private EC P-256 JWK (what type jwt signs with).</summary>
    internal static string PrivateJwk(string? alg = null)
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        ECParameters p = ec.ExportParameters(true);
        var jwk = new JsonObject
        {
            ["kty"] = "EC",
            ["crv"] = "P-256",
            ["x"] = Base64Url(p.Q.X!),
            ["y"] = Base64Url(p.Q.Y!),
            ["d"] = Base64Url(p.D!),
            ["kid"] = "sts-mint",
        };
        if (alg is not null)
        {
            jwk["alg"] = alg;
        }

        return jwk.ToJsonString();
    }

    private static string Base64Url(byte[] data) => Convert.ToBase64String(data).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static IEnumerable<TestCaseData> Cases()
    {
        string jwk = PrivateJwk();
        var cases = new Dictionary<string, Case>
        {
            // values
            ["unknown STSType value"] = new("", "STSType saml;\n" + Vars,
                "STSType", "STSType saml;", "\"saml\""),
            ["unknown STSExchange type"] = new("", $"STSExchange saml {Url};\n" + Vars,
                "STSExchange", "STSExchange saml", "\"saml\""),
            ["option string with a bad percent escape"] = new("", $"STSExchange wstrust {Url} \"auth=basic&username=%zz\";\n" + Vars,
                "STSExchange", "username=%zz", "invalid options"),
            ["option string with an encoded NUL"] = new("", $"STSExchange ropc {Url} \"username=a%00b\";\n" + Vars,
                "STSExchange", "username=a%00b", "invalid options"),
            ["unknown option name (the managed check)"] = new("", $"STSExchange ropc {Url} \"username=u&colour=blue\";\n" + Vars,
                "STSExchange", "colour=blue", "\"colour\""),
            ["unknown auth method (the managed check)"] = new("", $"STSExchange otx {Url} \"auth=magic\";\n" + Vars,
                "STSExchange", "auth=magic", "\"auth\""),
            ["wstrust with a form-body client authentication (the managed check)"] = new("",
                $"STSExchange wstrust {Url} \"auth=client_secret_post&client_id=c&client_secret=s&value_type=urn:v\";\n" + Vars,
                "STSExchange", "auth=client_secret_post", "\"auth\""),
            ["bad ssl_verify value"] = new("", $"STSExchange otx {Https} \"ssl_verify=maybe\";\n" + Vars,
                "STSExchange", "ssl_verify=maybe", "\"maybe\""),
            ["http_timeout=abc"] = new("", $"STSExchange otx {Url} \"http_timeout=abc\";\n" + Vars,
                "STSExchange", "http_timeout=abc", "\"abc\""),
            ["on_error that is neither return nor pass"] = new("", $"STSExchange otx {Url} \"on_error=ignore\";\n" + Vars,
                "STSExchange", "on_error=ignore", "\"ignore\""),
            ["outgoing_proxy"] = new("", $"STSExchange otx {Url} \"outgoing_proxy=http://127.0.0.1:3128\";\n" + Vars,
                "STSExchange", "outgoing_proxy=", "\"outgoing_proxy\""),
            ["STSHTTPTimeOut that is no time"] = new("", $"STSType ropc;\nSTSROPCEndpoint {Url};\nSTSHTTPTimeOut soon;\n" + Vars,
                "STSHTTPTimeOut", "STSHTTPTimeOut soon;", "invalid value"),
            ["STSPassTarget to an unknown place"] = new("", $"STSExchange otx {Url};\n" + Vars + "\nSTSPassTarget body:token;",
                "STSPassTarget", "STSPassTarget body:token;", "\"body:token\""),
            ["strip_source=bearer (bearer is a target place only)"] = new("", $"STSExchange otx {Url} \"strip_source=bearer\";\n" + Vars,
                "STSExchange", "strip_source=bearer", "\"bearer\""),
            ["STSVariables target that is not a variable"] = new("", $"STSExchange otx {Url};\nSTSVariables $http_x_source target;",
                "STSVariables", "STSVariables $http_x_source target;", "\"target\""),

            // completeness
            ["STSExchange with a type but no endpoint"] = new("", "STSExchange wstrust;\n" + Vars,
                "STSExchange", "STSExchange wstrust;", "needs an endpoint"),
            ["STSType without its endpoint"] = new("", "STSType wstrust;\n" + Vars,
                "STSType", "STSType wstrust;", "STSWSTrustEndpoint"),
            ["STSType ropc with only the otx endpoint"] = new("", $"STSType ropc;\nSTSOTXEndpoint {Url};\n" + Vars,
                "STSType", "STSType ropc;", "STSROPCEndpoint"),
            ["exchange without STSVariables"] = new("", $"STSExchange ropc {Url} \"username=u\";",
                "STSExchange", "STSExchange ropc", "STSVariables"),
            ["seed exchange without STSVariables"] = new("", $"STSType otx;\nSTSOTXEndpoint {Url};",
                "STSType", "STSType otx;", "STSVariables"),
            ["STSType and STSExchange in one location"] = new("", $"STSType ropc;\nSTSROPCEndpoint {Url};\nSTSExchange otx {Url};\n" + Vars,
                "STSExchange", "STSExchange otx", "cannot be combined"),
            ["STSExchange and STSType in one location"] = new("", $"STSExchange otx {Url};\nSTSType ropc;\nSTSROPCEndpoint {Url};\n" + Vars,
                "STSType", "STSType ropc;", "cannot be combined"),

            // duplicates
            ["duplicate STSExchange"] = new("", $"STSExchange otx {Url};\nSTSExchange ropc {Url};\n" + Vars,
                "STSExchange", "STSExchange ropc", "duplicate"),
            ["duplicate STSType"] = new("", $"STSType otx;\nSTSType ropc;\nSTSROPCEndpoint {Url};\n" + Vars,
                "STSType", "STSType ropc;", "duplicate"),
            ["duplicate STSVariables"] = new("", $"STSExchange otx {Url};\n" + Vars + "\nSTSVariables $http_y $sts_other;",
                "STSVariables", "$sts_other", "duplicate"),
            ["duplicate STSWSTrustEndpoint"] = new("", $"STSType wstrust;\nSTSWSTrustEndpoint {Url};\nSTSWSTrustEndpoint /other;\n" + Vars,
                "STSWSTrustEndpoint", "STSWSTrustEndpoint /other;", "duplicate"),
            ["duplicate STSWSTrustEndpointAuth"] = new("", $"STSType wstrust;\nSTSWSTrustEndpoint {Url};\n"
                + "STSWSTrustEndpointAuth basic username=a&password=b;\nSTSWSTrustEndpointAuth none;\n" + Vars,
                "STSWSTrustEndpointAuth", "STSWSTrustEndpointAuth none;", "duplicate"),
            ["duplicate STSWSTrustAppliesTo"] = new("", $"STSType wstrust;\nSTSWSTrustEndpoint {Url};\n"
                + "STSWSTrustAppliesTo urn:a;\nSTSWSTrustAppliesTo urn:b;\n" + Vars,
                "STSWSTrustAppliesTo", "STSWSTrustAppliesTo urn:b;", "duplicate"),
            ["duplicate STSHTTPTimeOut"] = new("", $"STSType ropc;\nSTSROPCEndpoint {Url};\nSTSHTTPTimeOut 5;\nSTSHTTPTimeOut 6;\n" + Vars,
                "STSHTTPTimeOut", "STSHTTPTimeOut 6;", "duplicate"),
            ["duplicate STSSSLValidateServer"] = new("", $"STSType ropc;\nSTSROPCEndpoint {Url};\n"
                + "STSSSLValidateServer on;\nSTSSSLValidateServer off;\n" + Vars,
                "STSSSLValidateServer", "STSSSLValidateServer off;", "duplicate"),
            ["duplicate STSCacheExpiresIn"] = new("", $"STSType ropc;\nSTSROPCEndpoint {Url};\n"
                + "STSCacheExpiresIn 60;\nSTSCacheExpiresIn 70;\n" + Vars,
                "STSCacheExpiresIn", "STSCacheExpiresIn 70;", "duplicate"),
            ["duplicate STSStripSource"] = new("", $"STSExchange otx {Url};\n" + Vars
                + "\nSTSStripSource authorization;\nSTSStripSource cookie:src;",
                "STSStripSource", "STSStripSource cookie:src;", "duplicate"),
            ["duplicate STSPassTarget"] = new("", $"STSExchange otx {Url};\n" + Vars
                + "\nSTSPassTarget bearer;\nSTSPassTarget header:X-T;",
                "STSPassTarget", "STSPassTarget header:X-T;", "duplicate"),
            ["duplicate STSCache in a location"] = new("", $"STSExchange otx {Url};\n" + Vars
                + "\nSTSCache shm name=c1;\nSTSCache shm name=c2;",
                "STSCache", "name=c2", "duplicate"),

            // endpoints
            ["STSExchange endpoint that is neither an http(s) URL nor a URI"] = new("", $"STSExchange wstrust ftp://127.0.0.1/sts \"value_type=urn:v\";\n" + Vars,
                "STSExchange", "ftp://", "invalid endpoint"),
            ["STSWSTrustEndpoint without a scheme"] = new("", "STSType wstrust;\nSTSWSTrustEndpoint sts.example.com/trust;\n" + Vars,
                "STSWSTrustEndpoint", "sts.example.com/trust", "invalid endpoint"),
            ["client certificate with only cert"] = new("", $"STSExchange otx {Https} \"auth=client_cert&cert=/etc/ssl/c.pem\";\n" + Vars,
                "STSExchange", "auth=client_cert", "\"key\""),
            ["client certificate over plain http"] = new("", $"STSExchange otx {Url} \"auth=client_cert&cert=/c.pem&key=/k.pem\";\n" + Vars,
                "STSExchange", "auth=client_cert", "https"),
            ["seed client certificate with only key"] = new("", $"STSType otx;\nSTSOTXEndpoint {Https};\n"
                + "STSOTXEndpointAuth client_cert key=/etc/ssl/k.pem;\n" + Vars,
                "STSOTXEndpointAuth", "STSOTXEndpointAuth client_cert", "\"cert\""),

            // jwt
            ["jwt with a JWK that is not a key"] = new("", "STSExchange jwt '{\"kty\":\"EC\",\"crv\":\"P-256\"}';\n" + Vars,
                "STSExchange", "STSExchange jwt", "\"endpoint\""),
            ["jwt with a JWK that does not fit alg"] = new("", $"STSExchange jwt '{jwk}' \"alg=RS256\";\n" + Vars,
                "STSExchange", "STSExchange jwt", "\"endpoint\""),
            ["jwt with an invalid claims projection"] = new("", $"STSExchange jwt '{jwk}' \"\" \"{{sub, email\";\n" + Vars,
                "STSExchange", "STSExchange jwt", "\"claims\""),
            ["claims projection with a type other than jwt"] = new("", $"STSExchange otx {Url} \"\" \"{{sub}}\";\n" + Vars,
                "STSExchange", "STSExchange otx", "only with type"),
            ["jwt key file that does not exist"] = new("", "STSExchange jwt file:missing.jwk;\n" + Vars,
                "STSExchange", "file:missing.jwk", "missing.jwk"),

            // caches
            ["cache.name naming no STSCache"] = new("STSCache shm name=real;", $"STSExchange otx {Url} \"cache.name=nope\";\n" + Vars,
                "STSExchange", "cache.name=nope", "name=nope"),
            ["cache.expiry that is no number"] = new("", $"STSExchange otx {Url} \"cache.expiry=soon\";\n" + Vars,
                "STSExchange", "cache.expiry=soon", "\"soon\""),
            ["STSCache with an unknown type"] = new("STSCache disk;", "",
                "STSCache", "STSCache disk;", "\"disk\""),
            ["STSCache with a bad size"] = new("STSCache shm name=s&size=lots;", "",
                "STSCache", "size=lots", "size"),
            ["STSCache with max_entries=0"] = new("STSCache shm name=m&max_entries=0;", "",
                "STSCache", "max_entries=0", "max_entries"),
        };

        foreach ((string name, Case c) in cases)
        {
            yield return new TestCaseData(c).SetName($"STS config error is refused by nginx -t: {name}");
        }
    }

    private static NginxInstance Configure(string http, string location)
    {
        var nginx = new NginxInstance("sts-config");
        nginx.Configure($$"""
            {{http}}
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location /api {
                    {{location.Replace("\n", "\n        ", StringComparison.Ordinal)}}
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
            }
            """);
        return nginx;
    }

    [TestCaseSource(nameof(Cases))]
    public void Config_error(Case c)
    {
        using NginxInstance nginx = Configure(c.Http, c.Location);
        int line = nginx.LineOf(c.Line);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        string emerg = result.Output.Split('\n').FirstOrDefault(l => l.Contains("[emerg]", StringComparison.Ordinal)) ?? "";
        Assert.That(emerg, Does.Contain($"\"{c.Name}"), "the message names the directive: " + result.Output);
        Assert.That(emerg, Does.Contain($"{nginx.ConfigPath}:{line}"), "the message gives the directive's file:line: " + result.Output);
        Assert.That(emerg, Does.Contain(c.Contains), result.Output);
    }

    private static IEnumerable<TestCaseData> Warnings()
    {
        yield return new TestCaseData("STSCache redis name=r&host=127.0.0.1:6379;", "STSCache redis", "redis")
            .SetName("STSCache redis is accepted with a warning (served by shared memory)");
        yield return new TestCaseData("STSCache memcache name=mc;", "STSCache memcache", "memcache")
            .SetName("STSCache memcache is accepted with a warning (served by shared memory)");
        yield return new TestCaseData("", "http_retries=3", "http_retries")
            .SetName("http_retries is accepted with a warning (exchanges are never retried)");
        yield return new TestCaseData("", "STSROPCEndpointAuth", "http_retries")
            .SetName("http_retries in the seed's endpoint options is accepted with one warning");
    }

    [TestCaseSource(nameof(Warnings))]
    public void Warning(string http, string line, string contains)
    {
        string location = line == "STSROPCEndpointAuth"
            ? $"STSType ropc;\nSTSROPCEndpoint {Url};\nSTSROPCEndpointAuth client_secret_basic client_id=c&client_secret=s&http_retries=2;\n"
                + "STSHTTPTimeOut 5;\nSTSSSLValidateServer on;\n" + Vars
            : $"STSExchange otx {Url} \"http_timeout=5{(contains == "http_retries" ? "&http_retries=3" : "")}\";\n" + Vars;
        using NginxInstance nginx = Configure(http, location);
        int at = nginx.LineOf(line);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Not.Contain("[emerg]"));
        string warn = result.Output.Split('\n').Single(l => l.Contains("[warn]", StringComparison.Ordinal));
        Assert.That(warn, Does.Contain(contains));
        Assert.That(warn, Does.Contain($"{nginx.ConfigPath}:{at}"), "the warning points at the directive");
    }

    /// <summary>A self-signed client certificate and its key as PEM files in the instance directory.</summary>
    internal static (string Cert, string Key) WriteClientCertificate(NginxInstance nginx)
    {
        using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest(
            "CN=nginx-oauth-sts-client", ec, HashAlgorithmName.SHA256);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return (nginx.WriteFile("client.pem", certificate.ExportCertificatePem()),
            nginx.WriteFile("client.key", ec.ExportPkcs8PrivateKeyPem()));
    }

    [Test]
    public void Every_directive_of_both_syntaxes_passes_nginx_t()
    {
        using var nginx = new NginxInstance("sts-config");
        string jwk = PrivateJwk("ES256");
        nginx.WriteFile("mint.jwk", jwk);
        nginx.WriteFile("secret.txt", "from-file\r\n");
        nginx.WriteFile("password.txt", "pw\n");
        nginx.WriteFile("client.jwk", PrivateJwk());
        (string cert, string key) = WriteClientCertificate(nginx);
        nginx.Configure($$"""
            STSCryptoPassphrase not-used;
            STSCache shm name=named&size=1m;
            STSCache file name=files&max_entries=10&max_val_size=4096;

            server {
                listen 127.0.0.1:{{nginx.Port}};
                STSCache shm name=server-level;
                STSCryptoPassphrase also-not-used;

                location = /_sts { internal; proxy_pass http://127.0.0.1:9/sts; }

                location /wstrust {
                    STSType wstrust;
                    STSSSLValidateServer off;
                    STSHTTPTimeOut 5;
                    STSSSLCAFile /etc/ssl/certs/ca-certificates.crt;
                    STSWSTrustEndpoint {{Https}};
                    STSWSTrustEndpointAuth basic username=u&password_file=password.txt;
                    STSWSTrustAppliesTo urn:$host;
                    STSWSTrustTokenType urn:bogus:token;
                    STSWSTrustValueType urn:pingidentity.com:oauth2:grant_type:validate_bearer;
                    STSRequestParameter ignored-by-wstrust;
                    STSCacheExpiresIn 60;
                    STSCache shm name=wst;
                    STSVariables $http_x_source $wst_target;
                    STSStripSource header:X-Source;
                    STSPassTarget header:X-Token;
                    location /wstrust/off { STSType disabled; proxy_pass http://127.0.0.1:{{nginx.EchoPort}}; }
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
                location /ropc {
                    STSType ropc;
                    STSHTTPTimeOut 500ms;
                    STSROPCEndpoint /_sts;
                    STSROPCEndpointAuth client_secret_basic client_id=c&client_secret_file=secret.txt;
                    STSROPCClientID c;
                    STSROPCUsername *;
                    STSRequestParameter scope "openid $arg_scope";
                    STSRequestParameter flag;
                    STSVariables $cookie_src $ropc_target;
                    STSStripSource cookie:src;
                    STSPassTarget cookie:target;
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
                location /otx {
                    STSType otx;
                    STSOTXEndpoint {{Url}};
                    STSOTXEndpointAuth client_secret_post client_id=c&client_secret=s;
                    STSOTXClientID c;
                    STSVariables $arg_token $otx_target;
                    STSStripSource query:token;
                    STSPassTarget query:target;
                    if ($arg_off) { STSType disabled; }
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
                location /later {
                    STSExchange otx {{Url}} "auth=private_key_jwt&client_id=c&jwk_file=client.jwk&kid=k1&aud=urn:aud&alg=ES256&audience=$arg_aud&scope=a+b&resource=urn:r1&resource=urn:r2&requested_token_type=urn:ietf:params:oauth:token-type:jwt&subject_token_type=urn:ietf:params:oauth:token-type:jwt&actor_token=$http_x_actor&actor_token_type=urn:ietf:params:oauth:token-type:access_token&ssl_verify=off&http_timeout=5&cache.name=named&cache.expiry=120&on_error=pass&strip_source=authorization&pass_target=bearer&params=x%3D1%26y%3D$arg_y";
                    STSVariables $http_authorization $later_target;
                    location /later/off { STSExchange disabled; proxy_pass http://127.0.0.1:{{nginx.EchoPort}}; }
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
                location /wstrust-later {
                    STSExchange wstrust {{Https}} "auth=basic&username=u&password=p&applies_to=urn:a&token_type=urn:t&value_type=urn:v&wsa_to=https://sts.example.test/&ca_file=/etc/ssl/certs/ca-certificates.crt&on_error=return";
                    STSVariables $http_x_source $wl_target;
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
                location /cc {
                    STSExchange cc {{Url}} "auth=client_secret_jwt&client_id=c&client_secret=s&alg=HS256&scope=api&audience=urn:aud";
                    STSVariables $cc_target;
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
                location /cc-mtls {
                    STSExchange cc {{Https}} "auth=client_cert&client_id=c&cert={{cert}}&key={{key}}";
                    STSVariables $ccm_target;
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
                location /jwt-file {
                    STSExchange jwt file:mint.jwk "iss=https://gw.example.test&aud=backend&sub=$arg_sub&client_id=gw&kid=k2&alg=ES256&lifetime=30" "{sub, email, roles: .realm_access.roles}";
                    STSVariables $http_x_claims $jwt_target;
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
                location /jwt-inline {
                    STSExchange jwt '{{jwk}}';
                    STSVariables $http_x_claims $jwt_inline_target;
                    proxy_pass http://127.0.0.1:{{nginx.EchoPort}};
                }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("test is successful"));
        Assert.That(result.Output, Does.Not.Contain("[emerg]"));
    }
}
