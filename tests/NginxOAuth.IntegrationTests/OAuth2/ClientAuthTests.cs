using System;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Sts;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.OAuth2;

/// <summary>
/// auth_oauth2_token_client_auth: every method as the fake IdP receives it
/// (client assertions verified with the public keys), clients per server and
/// per location, secrets from files.
/// </summary>
[TestFixture]
public sealed class ClientAuthTests : NginxFixture
{
    private const string Aud = "https://idp.example/token";
    private const string JwtSecret = "a-client-secret-of-at-least-32-bytes!";

    private FakeIdp _idp = null!;
    private int _port2;
    private readonly StsKey _rsa = StsKey.Create("RS256", "rsa-1");
    private readonly StsKey _ec = StsKey.Create("ES256", "ec-1");
    private readonly StsKey _ed = StsKey.Create("EdDSA", "ed-1");

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _idp = await FakeIdp.StartAsync();
        _port2 = NginxInstance.NewPort();
        string rsa = nginx.WriteFile("rsa.jwk", _rsa.PrivateJwk);
        string rsaNoKid = nginx.WriteFile("rsa-nokid.jwk", _rsa.PrivateJwkWithoutKid);
        string ec = nginx.WriteFile("ec.jwk", _ec.PrivateJwk);
        string ed = nginx.WriteFile("ed.jwk", _ed.PrivateJwk);
        string secret = nginx.WriteFile("secret.txt", "file-secret\n");
        string echo = nginx.Echo("sub=$oauth2_token_sub");

        string Loc(string name, string auth) => $$"""
                location /{{name}} {
                    auth_oauth2_token_introspect on;
                    {{auth}}
                    {{echo}}
                }
            """;

        nginx.Start($$"""
            auth_oauth2_token_client_id http-client;
            auth_oauth2_token_client_secret http-secret;

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
                location = /_token { internal; proxy_pass {{_idp.BaseUrl}}/token; }
                auth_oauth2_token_introspect_endpoint /_introspect;
                auth_oauth2_token_token_endpoint /_token;

            {{Loc("basic", "")}}
            {{Loc("post", "auth_oauth2_token_client_auth client_secret_post;")}}
            {{Loc("secretjwt", $"auth_oauth2_token_client_id jwt-client; auth_oauth2_token_client_secret \"{JwtSecret}\"; auth_oauth2_token_client_auth client_secret_jwt aud={Aud};")}}
            {{Loc("rs256", $"auth_oauth2_token_client_id key-client; auth_oauth2_token_client_auth private_key_jwt key={rsa} aud={Aud};")}}
            {{Loc("ps256", $"auth_oauth2_token_client_id key-client; auth_oauth2_token_client_auth private_key_jwt key={rsaNoKid} kid=given-kid alg=PS256 aud={Aud};")}}
            {{Loc("es256", $"auth_oauth2_token_client_id key-client; auth_oauth2_token_client_auth private_key_jwt key={ec} aud={Aud};")}}
            {{Loc("eddsa", $"auth_oauth2_token_client_id key-client; auth_oauth2_token_client_auth private_key_jwt key={ed} aud={Aud};")}}
            {{Loc("tls", "auth_oauth2_token_client_id tls-client; auth_oauth2_token_client_auth tls_client_auth;")}}
            {{Loc("none", "auth_oauth2_token_client_auth none;")}}
            {{Loc("file", $"auth_oauth2_token_client_id file-client; auth_oauth2_token_client_secret_file {secret};")}}
                location /xpost {
                    auth_oauth2_token_exchange on;
                    auth_oauth2_token_client_auth client_secret_post;
                    {{echo}}
                }
            }

            server {
                listen 127.0.0.1:{{_port2}};
                auth_oauth2_token_client_id server-client;
                auth_oauth2_token_client_secret server-secret;
                auth_oauth2_token_introspect_endpoint /_introspect;
                location = /_introspect { internal; proxy_pass {{_idp.BaseUrl}}/introspect; }
            {{Loc("srv", "")}}
            }
            """);
    }

    protected override async Task OnStopping() => await _idp.DisposeAsync();

    private IdpRequest CallFor(string token, string path = "/introspect") =>
        _idp.Requests(path).Single(r => r.Form.TryGetValue(path == "/token" ? "subject_token" : "token", out string? t) && t == token);

    private async Task<IdpRequest> IntrospectAsync(string location, string token, int? port = null)
    {
        HttpReply reply = await Nginx.GetAsync("/" + location, token, port);
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo("sub=user-" + token));
        return CallFor(token);
    }

    private static string Basic(string id, string secret) =>
        "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(id + ":" + secret));

    [Test]
    public async Task Client_secret_basic_is_the_default_with_the_http_level_client()
    {
        IdpRequest call = await IntrospectAsync("basic", "ca-basic");
        Assert.That(call.Header("Authorization"), Is.EqualTo(Basic("http-client", "http-secret")));
        Assert.That(call.Form.ContainsKey("client_secret"), Is.False);
        Assert.That(call.Form["token_type_hint"], Is.EqualTo("access_token"));
    }

    [Test]
    public async Task Client_secret_post_puts_the_credentials_in_the_body()
    {
        IdpRequest call = await IntrospectAsync("post", "ca-post");
        Assert.That(call.Header("Authorization"), Is.Null);
        Assert.That(call.Form["client_id"], Is.EqualTo("http-client"));
        Assert.That(call.Form["client_secret"], Is.EqualTo("http-secret"));
    }

    [Test]
    public async Task Client_secret_post_also_authenticates_the_exchange()
    {
        HttpReply reply = await Nginx.GetAsync("/xpost", "ca-xpost");
        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        IdpRequest call = CallFor("ca-xpost", "/token");
        Assert.That(call.Header("Authorization"), Is.Null);
        Assert.That(call.Form["client_id"], Is.EqualTo("http-client"));
        Assert.That(call.Form["client_secret"], Is.EqualTo("http-secret"));
    }

    [Test]
    public async Task Client_secret_jwt_is_an_HS256_assertion_keyed_with_the_secret()
    {
        IdpRequest call = await IntrospectAsync("secretjwt", "ca-sjwt");
        Assert.That(call.Header("Authorization"), Is.Null);
        Assert.That(call.Form["client_assertion_type"], Is.EqualTo("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
        string assertion = call.Form["client_assertion"];
        TokenValidationResult result = await new JsonWebTokenHandler().ValidateTokenAsync(assertion, new TokenValidationParameters
        {
            IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(JwtSecret)),
            ValidAlgorithms = ["HS256"],
            ValidIssuer = "jwt-client",
            ValidAudience = Aud,
            RequireSignedTokens = true,
        });
        Assert.That(result.IsValid, Is.True, result.Exception?.Message);
        JsonElement payload = StsKey.Payload(assertion);
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("jwt-client"));
        Assert.That(payload.GetProperty("jti").GetString(), Is.Not.Empty);
        Assert.That(payload.GetProperty("exp").GetInt64() - payload.GetProperty("iat").GetInt64(), Is.EqualTo(60));
        Assert.That(call.Form.ContainsKey("client_secret"), Is.False, "the secret never travels");
    }

    [TestCase("rs256", "RS256", "rsa-1")]
    [TestCase("ps256", "PS256", "given-kid")]
    [TestCase("es256", "ES256", "ec-1")]
    [TestCase("eddsa", "EdDSA", "ed-1")]
    public async Task Private_key_jwt_is_signed_with_the_private_key_and_names_its_kid(string location, string alg, string kid)
    {
        IdpRequest call = await IntrospectAsync(location, "ca-" + location);
        string assertion = call.Form["client_assertion"];
        JsonElement header = StsKey.Header(assertion);
        Assert.That(header.GetProperty("alg").GetString(), Is.EqualTo(alg));
        Assert.That(header.GetProperty("kid").GetString(), Is.EqualTo(kid));
        StsKey key = location switch { "es256" => _ec, "eddsa" => _ed, _ => _rsa };
        if (alg == "PS256")
        {
            Assert.That(await VerifiesPs256Async(assertion), Is.True);
        }
        else
        {
            await key.AssertSignedAsync(assertion);
        }
        JsonElement payload = StsKey.Payload(assertion);
        Assert.That(payload.GetProperty("iss").GetString(), Is.EqualTo("key-client"));
        Assert.That(payload.GetProperty("aud").GetString(), Is.EqualTo(Aud));
        Assert.That(call.Header("Authorization"), Is.Null);
    }

    private async Task<bool> VerifiesPs256Async(string jwt)
    {
        var jwk = new JsonWebKey(_rsa.PrivateJwkWithoutKid);
        var rsa = System.Security.Cryptography.RSA.Create();
        rsa.ImportParameters(new System.Security.Cryptography.RSAParameters
        {
            Modulus = Base64UrlEncoder.DecodeBytes(jwk.N), Exponent = Base64UrlEncoder.DecodeBytes(jwk.E),
        });
        TokenValidationResult result = await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            IssuerSigningKey = new RsaSecurityKey(rsa),
            ValidAlgorithms = ["PS256"],
            ValidateIssuer = false,
            ValidateAudience = false,
            RequireSignedTokens = true,
        });
        return result.IsValid;
    }

    [Test]
    public async Task Tls_client_auth_sends_only_the_client_id()
    {
        IdpRequest call = await IntrospectAsync("tls", "ca-tls");
        Assert.That(call.Header("Authorization"), Is.Null);
        Assert.That(call.Form["client_id"], Is.EqualTo("tls-client"));
        Assert.That(call.Form.Keys.Order(), Is.EqualTo(new[] { "client_id", "token", "token_type_hint" }));
    }

    [Test]
    public async Task None_sends_the_client_id_and_no_credentials()
    {
        IdpRequest call = await IntrospectAsync("none", "ca-none");
        Assert.That(call.Header("Authorization"), Is.Null);
        Assert.That(call.Form["client_id"], Is.EqualTo("http-client"));
        Assert.That(call.Form.ContainsKey("client_secret"), Is.False);
    }

    [Test]
    public async Task A_location_has_its_own_client_with_a_secret_from_a_file()
    {
        IdpRequest call = await IntrospectAsync("file", "ca-file");
        Assert.That(call.Header("Authorization"), Is.EqualTo(Basic("file-client", "file-secret")));
    }

    [Test]
    public async Task A_server_has_its_own_client()
    {
        IdpRequest call = await IntrospectAsync("srv", "ca-srv", _port2);
        Assert.That(call.Header("Authorization"), Is.EqualTo(Basic("server-client", "server-secret")));
    }
}
