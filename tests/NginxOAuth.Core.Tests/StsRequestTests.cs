using System;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Xml;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Sts;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>nox_sts_request: form bodies, client authentication and the WS-Trust envelope, parsed back independently.</summary>
public sealed class StsRequestTests
{
    // ---- form types ---------------------------------------------------------

    [Test]
    public void Ropc_sends_the_source_as_password_with_the_configured_username()
    {
        using StsSettings s = Sts.Create("type", "ropc", "endpoint", Sts.Endpoint, "username", "svc user", "client_id", "app");
        Sts.Built b = Sts.Request(s, "src tok&=");
        var form = Sts.Form(b.Body);
        Assert.That(form.Select(p => p.Key), Is.EqualTo(new[] { "grant_type", "username", "password", "client_id" }));
        Assert.That(Sts.One(form, "grant_type"), Is.EqualTo("password"));
        Assert.That(Sts.One(form, "username"), Is.EqualTo("svc user"));
        Assert.That(Sts.One(form, "password"), Is.EqualTo("src tok&="));
        Assert.That(b.Body, Does.Contain("password=src+tok%26%3D"));
        Assert.That(b.Authorization, Is.Null);
        Assert.That(b.Action, Is.Null);
    }

    [Test]
    public void Ropc_username_defaults_to_the_client_id()
    {
        using StsSettings s = Sts.Create("type", "ropc", "client_id", "app");
        Assert.That(Sts.One(Sts.Form(Sts.Request(s, "t").Body), "username"), Is.EqualTo("app"));
    }

    [Test]
    public void Cc_ignores_the_source_and_sends_scope_audience_and_every_resource()
    {
        using StsSettings s = Sts.Create("type", "cc", "scope", "a b", "audience", "api", "resource", "https://r1",
            "resource", "https://r2", "auth", "client_secret_post", "client_id", "app", "client_secret", "s3");
        Sts.Built b = Sts.Request(s, "");
        Assert.That(b.Error, Is.EqualTo(StsError.None));
        var form = Sts.Form(b.Body);
        Assert.That(Sts.One(form, "grant_type"), Is.EqualTo("client_credentials"));
        Assert.That(Sts.One(form, "scope"), Is.EqualTo("a b"));
        Assert.That(Sts.One(form, "audience"), Is.EqualTo("api"));
        Assert.That(Sts.Values(form, "resource"), Is.EqualTo(new[] { "https://r1", "https://r2" }));
        Assert.That(Sts.One(form, "client_id"), Is.EqualTo("app"));
        Assert.That(Sts.One(form, "client_secret"), Is.EqualTo("s3"));
        Assert.That(Sts.Values(form, "password"), Is.Empty);
    }

    [Test]
    public void Otx_sends_every_RFC_8693_parameter_that_is_set()
    {
        using StsSettings s = Sts.Create("type", "otx", "audience", "aud1", "scope", "s1 s2", "resource", "r1",
            "resource", "r2", "requested_token_type", "urn:ietf:params:oauth:token-type:jwt",
            "actor_token", "act", "actor_token_type", "urn:ietf:params:oauth:token-type:id_token", "client_id", "app");
        var form = Sts.Form(Sts.Request(s, "subj").Body);
        Assert.That(Sts.One(form, "grant_type"), Is.EqualTo("urn:ietf:params:oauth:grant-type:token-exchange"));
        Assert.That(Sts.One(form, "subject_token"), Is.EqualTo("subj"));
        Assert.That(Sts.One(form, "subject_token_type"), Is.EqualTo("urn:ietf:params:oauth:token-type:access_token"));
        Assert.That(Sts.One(form, "audience"), Is.EqualTo("aud1"));
        Assert.That(Sts.One(form, "scope"), Is.EqualTo("s1 s2"));
        Assert.That(Sts.Values(form, "resource"), Is.EqualTo(new[] { "r1", "r2" }));
        Assert.That(Sts.One(form, "requested_token_type"), Is.EqualTo("urn:ietf:params:oauth:token-type:jwt"));
        Assert.That(Sts.One(form, "actor_token"), Is.EqualTo("act"));
        Assert.That(Sts.One(form, "actor_token_type"), Is.EqualTo("urn:ietf:params:oauth:token-type:id_token"));
        Assert.That(Sts.One(form, "client_id"), Is.EqualTo("app"));
    }

    [Test]
    public void Otx_sends_no_actor_token_type_without_an_actor_token()
    {
        using StsSettings s = Sts.Create("type", "otx", "actor_token", "", "actor_token_type", "urn:x:jwt");
        var form = Sts.Form(Sts.Request(s, "subj").Body);
        Assert.That(Sts.Values(form, "actor_token"), Is.Empty);
        Assert.That(Sts.Values(form, "actor_token_type"), Is.Empty);
    }

    [Test]
    public void Introspect_sends_the_token_with_its_hint_and_the_client_authentication()
    {
        using StsSettings s = Sts.Create("type", "introspect", "auth", "client_secret_post", "client_id", "gw",
            "client_secret", "s p");
        var form = Sts.Form(Sts.Request(s, "tok en").Body);
        Assert.That(Sts.One(form, "token"), Is.EqualTo("tok en"));
        Assert.That(Sts.One(form, "token_type_hint"), Is.EqualTo("access_token"));
        Assert.That(Sts.One(form, "client_id"), Is.EqualTo("gw"));
        Assert.That(Sts.One(form, "client_secret"), Is.EqualTo("s p"));
        Assert.That(Sts.Values(form, "grant_type"), Is.Empty);
    }

    [Test]
    public void Introspect_with_basic_sends_the_same_request_on_every_call()
    {
        // the first call builds the Basic value, the next ones write the form straight to the buffer
        using StsSettings s = Sts.Create("type", "introspect", "auth", "client_secret_basic", "client_id", "g w",
            "client_secret", "s:p", "params", "extra=a+b&flag");
        Sts.Built first = Sts.Request(s, "tok en.\u00e9");
        Sts.Built second = Sts.Request(s, "tok en.\u00e9");
        Assert.That(first.Error, Is.EqualTo(StsError.None));
        Assert.That(second, Is.EqualTo(first));
        Assert.That(first.Body, Is.EqualTo("token=tok+en.%C3%A9&token_type_hint=access_token&extra=a+b&flag="));
        Assert.That(first.Authorization, Is.EqualTo("Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("g+w:s%3Ap"))));
        Assert.That(Sts.Request(s, "t").Body, Is.EqualTo("token=t&token_type_hint=access_token&extra=a+b&flag="));
    }

    [Test]
    public void Introspect_with_basic_reports_the_size_it_needs_on_every_call()
    {
        using StsSettings s = Sts.Create("type", "introspect", "auth", "client_secret_basic", "client_id", "gw",
            "client_secret", "s");
        Sts.Built whole = Sts.Request(s, "tok");
        int needed = whole.Body.Length + whole.Authorization!.Length;
        Sts.Built small = Sts.Request(s, "tok", capacity: needed - 1);
        Assert.That(small.Error, Is.EqualTo(StsError.BufferTooSmall));
        Assert.That(small.Needed, Is.EqualTo(needed));
        Assert.That(Sts.Request(s, "tok", capacity: needed), Is.EqualTo(whole));
    }

    [Test]
    public void Otx_subject_token_type_setting_replaces_the_default()
    {
        using StsSettings s = Sts.Create("type", "otx", "subject_token_type", "urn:x:saml2");
        Assert.That(Sts.One(Sts.Form(Sts.Request(s, "t").Body), "subject_token_type"), Is.EqualTo("urn:x:saml2"));
    }

    [Test]
    public void Otx_subject_token_type_in_params_is_sent_once_instead_of_the_default()
    {
        using StsSettings s = Sts.Create("type", "otx", "params", "subject_token_type=urn%3Ax%3Ajwt&extra=a+b&flag");
        var form = Sts.Form(Sts.Request(s, "t").Body);
        Assert.That(Sts.One(form, "subject_token_type"), Is.EqualTo("urn:x:jwt"));
        Assert.That(Sts.One(form, "extra"), Is.EqualTo("a b"));
        Assert.That(Sts.One(form, "flag"), Is.EqualTo(""));
    }

    [TestCase("ropc")]
    [TestCase("otx")]
    public void Empty_source_is_refused(string type)
    {
        using StsSettings s = Sts.Create("type", type);
        Assert.That(Sts.Request(s, "").Error, Is.EqualTo(StsError.SourceInvalid));
    }

    [Test]
    public void Request_values_override_settings_and_a_params_override_is_a_whole_form()
    {
        using StsSettings s = Sts.Create("type", "otx", "scope", "configured", "params", "a=1");
        var form = Sts.Form(Sts.Request(s, "t", values: [null, T.U("from request"), T.U("b=2&c=3")]).Body);
        Assert.That(Sts.One(form, "scope"), Is.EqualTo("from request"));
        Assert.That(Sts.Values(form, "a"), Is.Empty);
        Assert.That(Sts.One(form, "b"), Is.EqualTo("2"));
        Assert.That(Sts.One(form, "c"), Is.EqualTo("3"));
    }

    [Test]
    public void Empty_request_value_drops_an_optional_parameter()
    {
        using StsSettings s = Sts.Create("type", "otx", "scope", "configured");
        Assert.That(Sts.Values(Sts.Form(Sts.Request(s, "t", values: [null, T.U("")]).Body), "scope"), Is.Empty);
    }

    [Test]
    public void Bad_request_value_is_refused()
    {
        using StsSettings s = Sts.Create("type", "otx", "params", "a=1");
        Assert.That(Sts.Request(s, "t", values: [null, T.U("a=%G0")]).Error, Is.EqualTo(StsError.SettingInvalid));
    }

    [Test]
    public void Small_buffer_reports_the_size_needed()
    {
        using StsSettings s = Sts.Create("type", "otx", "auth", "client_secret_basic", "client_id", "a", "client_secret", "b");
        Sts.Built full = Sts.Request(s, "tok");
        int needed = full.Body.Length + full.Authorization!.Length;
        Sts.Built small = Sts.Request(s, "tok", capacity: needed - 1);
        Assert.That(small.Error, Is.EqualTo(StsError.BufferTooSmall));
        Assert.That(small.Needed, Is.EqualTo(needed));
        Assert.That(Sts.Request(s, "tok", capacity: needed).Error, Is.EqualTo(StsError.None));
    }

    [Test]
    public void Long_values_are_encoded_whole_past_the_first_buffer()
    {
        // the body grows from 256 bytes; text settings longer than 256
        // characters are encoded through a heap buffer, not the stack one
        string scope = string.Concat(Enumerable.Repeat("é x/", 300));
        string source = string.Concat(Enumerable.Repeat("a.b-c_~ &=%+\u00ff", 5000));
        using StsSettings s = Sts.Create("type", "otx", "scope", scope);
        Sts.Built b = Sts.Request(s, source);
        Assert.That(b.Error, Is.EqualTo(StsError.None));
        var form = Sts.Form(b.Body);
        Assert.That(Sts.One(form, "subject_token"), Is.EqualTo(source));
        Assert.That(Sts.One(form, "scope"), Is.EqualTo(scope));
        Assert.That(b.Body, Does.Contain("scope=%C3%A9+x%2F%C3%A9"));
    }

    // ---- client authentication -------------------------------------------------

    [Test]
    public void Auth_none_puts_client_id_in_the_body_when_set()
    {
        using StsSettings with = Sts.Create("type", "otx", "auth", "none", "client_id", "app");
        using StsSettings without = Sts.Create("type", "otx", "auth", "none");
        Assert.That(Sts.One(Sts.Form(Sts.Request(with, "t").Body), "client_id"), Is.EqualTo("app"));
        Assert.That(Sts.Values(Sts.Form(Sts.Request(without, "t").Body), "client_id"), Is.Empty);
    }

    [Test]
    public void Client_secret_basic_form_encodes_id_and_secret_before_base64()
    {
        using StsSettings s = Sts.Create("type", "otx", "auth", "client_secret_basic", "client_id", "my app:1",
            "client_secret", "p@ss wörd");
        Sts.Built b = Sts.Request(s, "t");
        Assert.That(b.Authorization, Does.StartWith("Basic "));
        string decoded = Encoding.UTF8.GetString(Convert.FromBase64String(b.Authorization!["Basic ".Length..]));
        Assert.That(decoded, Is.EqualTo("my+app%3A1:p%40ss+w%C3%B6rd"));
        var form = Sts.Form(b.Body);
        Assert.That(Sts.Values(form, "client_id"), Is.Empty);
        Assert.That(Sts.Values(form, "client_secret"), Is.Empty);
    }

    [Test]
    public void Client_secret_basic_header_follows_a_per_request_secret()
    {
        // the configured header is built once and kept; a request value
        // that changes the secret gets its own header, and the next
        // request without one the configured header again
        using StsSettings s = Sts.Create("type", "otx", "auth", "client_secret_basic", "client_id", "app",
            "client_secret", "configured");
        string Decoded(Sts.Built b) =>
            Encoding.UTF8.GetString(Convert.FromBase64String(b.Authorization!["Basic ".Length..]));
        Assert.That(Decoded(Sts.Request(s, "t")), Is.EqualTo("app:configured"));
        Assert.That(Decoded(Sts.Request(s, "t")), Is.EqualTo("app:configured"));
        Assert.That(Decoded(Sts.Request(s, "t", values: [null, null, null, T.U("per request")])),
            Is.EqualTo("app:per+request"));
        Assert.That(Decoded(Sts.Request(s, "t")), Is.EqualTo("app:configured"));
    }

    [Test]
    public void Basic_sends_username_and_password_unencoded()
    {
        using StsSettings s = Sts.Create("type", "otx", "auth", "basic", "username", "svc user", "password", "p:w");
        string decoded = Encoding.UTF8.GetString(Convert.FromBase64String(Sts.Request(s, "t").Authorization!["Basic ".Length..]));
        Assert.That(decoded, Is.EqualTo("svc user:p:w"));
    }

    [Test]
    public void Client_cert_sends_the_client_id_and_no_secret()
    {
        using StsSettings s = Sts.Create("type", "otx", "auth", "client_cert", "client_id", "app", "client_secret", "x");
        Sts.Built b = Sts.Request(s, "t");
        Assert.That(b.Authorization, Is.Null);
        var form = Sts.Form(b.Body);
        Assert.That(form.Select(p => p.Key), Is.EqualTo(new[] { "grant_type", "subject_token", "subject_token_type", "client_id" }));
        Assert.That(Sts.One(form, "client_id"), Is.EqualTo("app"), "RFC 8705 2: the client_id goes with the certificate");
    }

    [Test]
    public void Client_cert_without_a_client_id_adds_nothing()
    {
        using StsSettings s = Sts.Create("type", "otx", "auth", "client_cert");
        Sts.Built b = Sts.Request(s, "t");
        Assert.That(b.Authorization, Is.Null);
        Assert.That(Sts.Form(b.Body).Select(p => p.Key), Is.EqualTo(new[] { "grant_type", "subject_token", "subject_token_type" }));
    }

    [Test]
    public void Client_secret_jwt_assertion_is_an_HS256_JWT_keyed_with_the_secret()
    {
        const string secret = "a-client-secret-of-at-least-32-bytes!";
        using StsSettings s = Sts.Create("type", "otx", "endpoint", Sts.Endpoint, "auth", "client_secret_jwt",
            "client_id", "app", "client_secret", secret);
        var form = Sts.Form(Sts.Request(s, "t").Body);
        Assert.That(Sts.One(form, "client_assertion_type"), Is.EqualTo("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"));
        Assert.That(Sts.Values(form, "client_secret"), Is.Empty);
        string assertion = Sts.One(form, "client_assertion");
        CheckAssertionClaims(assertion, Sts.Endpoint);
        Assert.That(Sts.Parts(assertion).Header, Does.Contain("\"alg\":\"HS256\""));

        using KeySet keys = T.Keys(T.Jwks(T.OctJwk(T.U(secret))));
        Assert.That(T.Verify(T.Policy(keys), assertion).Error, Is.EqualTo(TokenError.None));
        Assert.That(MsValidate(assertion, new SymmetricSecurityKey(T.U(secret))), Is.True);
    }

    [TestCase("RS256")]
    [TestCase("PS256")]
    [TestCase("ES256")]
    [TestCase("ES384")]
    [TestCase("ES512")]
    [TestCase("EdDSA")]
    public void Private_key_jwt_assertion_verifies_with_the_public_key(string alg)
    {
        (string privateJwk, string publicJwk, SecurityKey? msKey, IDisposable owner) = KeyFor(alg);
        using (owner)
        {
            using StsSettings s = Sts.Create("type", "cc", "endpoint", Sts.Endpoint, "auth", "private_key_jwt",
                "client_id", "app", "jwk", privateJwk, "alg", alg, "aud", "https://issuer.example");
            string assertion = Sts.One(Sts.Form(Sts.Request(s, "").Body), "client_assertion");
            CheckAssertionClaims(assertion, "https://issuer.example");
            Assert.That(Sts.Parts(assertion).Header, Does.Contain("\"alg\":\"" + alg + "\"").And.Contain("\"kid\":\"k1\""));

            using KeySet keys = T.Keys(T.Jwks(publicJwk));
            Assert.That(T.Verify(T.Policy(keys), assertion).Error, Is.EqualTo(TokenError.None));
            if (msKey is not null)
            {
                Assert.That(MsValidate(assertion, msKey), Is.True, "Microsoft.IdentityModel accepts it");
            }
        }
    }

    [Test]
    public void Kid_setting_overrides_the_JWK_kid_and_alg_defaults_from_the_key()
    {
        using ECDsa ec = T.NewEc("P-384");
        using StsSettings s = Sts.Create("type", "cc", "endpoint", Sts.Endpoint, "auth", "private_key_jwt",
            "client_id", "app", "jwk", Sts.EcPrivateJwk(ec, "P-384", "from-jwk"), "kid", "from-setting");
        string header = Sts.Parts(Sts.One(Sts.Form(Sts.Request(s, "").Body), "client_assertion")).Header;
        Assert.That(header, Does.Contain("\"kid\":\"from-setting\"").And.Contain("\"alg\":\"ES384\""));
    }

    [Test]
    public void Assertions_carry_a_fresh_jti_each_time()
    {
        using StsSettings s = Sts.Create("type", "cc", "endpoint", Sts.Endpoint, "auth", "client_secret_jwt",
            "client_id", "app", "client_secret", "secret");
        string a = Sts.Parts(Sts.One(Sts.Form(Sts.Request(s, "").Body), "client_assertion")).Payload;
        string b = Sts.Parts(Sts.One(Sts.Form(Sts.Request(s, "").Body), "client_assertion")).Payload;
        Assert.That(Jti(a), Is.Not.EqualTo(Jti(b)));
        Assert.That(System.Buffers.Text.Base64Url.DecodeFromChars(Jti(a)), Has.Length.EqualTo(16));
    }

    private static string Jti(string payload)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(payload);
        return doc.RootElement.GetProperty("jti").GetString()!;
    }

    private static void CheckAssertionClaims(string assertion, string aud)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(Sts.Parts(assertion).Payload);
        var root = doc.RootElement;
        Assert.That(root.GetProperty("iss").GetString(), Is.EqualTo("app"));
        Assert.That(root.GetProperty("sub").GetString(), Is.EqualTo("app"));
        Assert.That(root.GetProperty("aud").GetString(), Is.EqualTo(aud));
        Assert.That(root.GetProperty("iat").GetInt64(), Is.EqualTo(T.Now));
        Assert.That(root.GetProperty("exp").GetInt64(), Is.EqualTo(T.Now + 60));
    }

    internal static bool MsValidate(string token, SecurityKey key)
    {
        TokenValidationResult result = new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            IssuerSigningKey = key,
            ValidateIssuer = false,
            ValidateAudience = false,
            ValidateLifetime = false,
            TryAllIssuerSigningKeys = true,
        }).GetAwaiter().GetResult();
        if (!result.IsValid)
        {
            TestContext.Out.WriteLine(result.Exception?.ToString());
        }
        return result.IsValid;
    }

    /// <summary>A private JWK, its public JWK (kid k1), and the key for Microsoft.IdentityModel (null for EdDSA).</summary>
    internal static (string Private, string Public, SecurityKey? Ms, IDisposable Owner) KeyFor(string alg)
    {
        switch (alg)
        {
            case "RS256":
            case "PS256":
                RSA rsa = RSA.Create(2048);
                return (Sts.RsaPrivateJwk(rsa, "k1"), T.RsaJwk(rsa, "k1"), new RsaSecurityKey(rsa.ExportParameters(false)), rsa);
            case "EdDSA":
                var ed = new EdKey(false);
                return (Sts.EdPrivateJwk(ed, "k1"), ed.Jwk("k1"), null, ed);
            default:
                string crv = alg switch { "ES256" => "P-256", "ES384" => "P-384", _ => "P-521" };
                ECDsa ec = T.NewEc(crv);
                ECDsa pub = ECDsa.Create(ec.ExportParameters(false));
                return (Sts.EcPrivateJwk(ec, crv, "k1"), T.EcJwk(ec, crv, "k1"), new ECDsaSecurityKey(pub), ec);
        }
    }

    // ---- WS-Trust ------------------------------------------------------------------

    private static XmlDocument Envelope(string body)
    {
        var doc = new XmlDocument { XmlResolver = null };
        doc.LoadXml(body);
        return doc;
    }

    private static XmlNamespaceManager Ns(XmlDocument doc)
    {
        var ns = new XmlNamespaceManager(doc.NameTable);
        ns.AddNamespace("s", WsTrust.Soap12);
        ns.AddNamespace("wsa", WsTrust.Wsa);
        ns.AddNamespace("wsse", WsTrust.Wsse);
        ns.AddNamespace("wsu", WsTrust.Wsu);
        ns.AddNamespace("wst", WsTrust.Trust13);
        ns.AddNamespace("wsp", WsTrust.Wsp);
        ns.AddNamespace("saml", WsTrust.Saml20);
        return ns;
    }

    private static string Text(XmlDocument doc, string xpath)
    {
        XmlNode? node = doc.SelectSingleNode(xpath, Ns(doc));
        Assert.That(node, Is.Not.Null, xpath);
        return node!.InnerText;
    }

    [Test]
    public void Wstrust_envelope_carries_the_RST_with_defaults()
    {
        using StsSettings s = Sts.Create("type", "wstrust", "endpoint", Sts.Endpoint, "value_type", "urn:vt:jwt");
        Sts.Built b = Sts.Request(s, "eyJ.a.b");
        Assert.That(b.Error, Is.EqualTo(StsError.None));
        Assert.That(b.Action, Is.EqualTo(Sts.Endpoint), "soapAction carries the endpoint, as liboauth2-sts sends it");
        Assert.That(b.Authorization, Is.Null);
        XmlDocument doc = Envelope(b.Body);
        Assert.That(Text(doc, "/s:Envelope/s:Header/wsa:Action"), Is.EqualTo("http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue"));
        Assert.That(Text(doc, "/s:Envelope/s:Header/wsa:To"), Is.EqualTo(Sts.Endpoint));
        Assert.That(Text(doc, "/s:Envelope/s:Header/wsa:MessageID"), Does.Match("^urn:uuid:[0-9a-f-]{36}$"));
        Assert.That(Text(doc, "/s:Envelope/s:Header/wsse:Security/wsu:Timestamp/wsu:Created"), Is.EqualTo("2023-11-14T22:13:20Z"));
        Assert.That(Text(doc, "/s:Envelope/s:Header/wsse:Security/wsu:Timestamp/wsu:Expires"), Is.EqualTo("2023-11-14T22:18:20Z"));
        XmlElement bst = (XmlElement)doc.SelectSingleNode("//wsse:Security/wsse:BinarySecurityToken", Ns(doc))!;
        Assert.That(bst.GetAttribute("ValueType"), Is.EqualTo("urn:vt:jwt"));
        Assert.That(bst.GetAttribute("EncodingType"), Does.EndWith("#Base64Binary"));
        Assert.That(Encoding.UTF8.GetString(Convert.FromBase64String(bst.InnerText)), Is.EqualTo("eyJ.a.b"));
        Assert.That(Text(doc, "/s:Envelope/s:Body/wst:RequestSecurityToken/wst:TokenType"),
            Is.EqualTo("http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"));
        Assert.That(Text(doc, "/s:Envelope/s:Body/wst:RequestSecurityToken/wst:RequestType"),
            Is.EqualTo("http://docs.oasis-open.org/ws-sx/ws-trust/200512/Issue"));
        Assert.That(Text(doc, "/s:Envelope/s:Body/wst:RequestSecurityToken/wst:KeyType"),
            Is.EqualTo("http://docs.oasis-open.org/ws-sx/ws-trust/200512/SymmetricKey"));
        Assert.That(doc.SelectSingleNode("//wsp:AppliesTo", Ns(doc)), Is.Null);
    }

    [Test]
    public void Wstrust_settings_fill_AppliesTo_TokenType_and_To()
    {
        using StsSettings s = Sts.Create("type", "wstrust", "endpoint", Sts.Endpoint, "value_type", "urn:vt",
            "applies_to", "urn:rp&<x>", "token_type", "urn:tt", "wsa_to", "https://to.example/?a=1&b=2",
            "auth", "basic", "username", "u", "password", "p");
        Sts.Built b = Sts.Request(s, "t");
        XmlDocument doc = Envelope(b.Body);
        Assert.That(Text(doc, "//wst:RequestSecurityToken/wsp:AppliesTo/wsa:EndpointReference/wsa:Address"), Is.EqualTo("urn:rp&<x>"));
        Assert.That(Text(doc, "//wst:RequestSecurityToken/wst:TokenType"), Is.EqualTo("urn:tt"));
        Assert.That(Text(doc, "/s:Envelope/s:Header/wsa:To"), Is.EqualTo("https://to.example/?a=1&b=2"));
        Assert.That(b.Authorization, Is.EqualTo("Basic " + Convert.ToBase64String(T.U("u:p"))));
        Assert.That(b.Action, Is.EqualTo(Sts.Endpoint));
    }

    [Test]
    public void Wstrust_raw_XML_source_is_inserted_as_is()
    {
        const string assertion = "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a\"><saml:Issuer>idp</saml:Issuer></saml:Assertion>";
        using StsSettings s = Sts.Create("type", "wstrust", "endpoint", Sts.Endpoint);
        Sts.Built b = Sts.Request(s, "  " + assertion + "\n");
        Assert.That(b.Body, Does.Contain(assertion));
        XmlDocument doc = Envelope(b.Body);
        Assert.That(Text(doc, "//wsse:Security/saml:Assertion/saml:Issuer"), Is.EqualTo("idp"));
    }

    [TestCase("</wsse:Security><evil/>", TestName = "Closing_tag_injection_stays_inside_base64")]
    [TestCase("]]><evil/><![CDATA[", TestName = "CDATA_injection_stays_inside_base64")]
    [TestCase("&xxe;<!DOCTYPE x>", TestName = "Entity_injection_stays_inside_base64")]
    public void Wstrust_binary_source_cannot_break_out(string source)
    {
        using StsSettings s = Sts.Create("type", "wstrust", "endpoint", Sts.Endpoint, "value_type", "urn:vt");
        Sts.Built b = Sts.Request(s, source);
        XmlDocument doc = Envelope(b.Body);
        Assert.That(doc.GetElementsByTagName("evil").Count, Is.Zero);
        Assert.That(Encoding.UTF8.GetString(Convert.FromBase64String(Text(doc, "//wsse:BinarySecurityToken"))), Is.EqualTo(source));
    }

    [TestCase("</wsse:Security><evil/>", TestName = "Closing_tag_source_without_value_type_is_refused")]
    [TestCase("eyJhbGciOiJSUzI1NiJ9.e30.sig", TestName = "JWT_source_without_value_type_is_refused")]
    [TestCase("<a/><b/>", TestName = "Two_elements_are_refused")]
    [TestCase("<a>", TestName = "Unclosed_element_is_refused")]
    [TestCase("<?xml version=\"1.0\"?><a/>", TestName = "XML_declaration_is_refused")]
    [TestCase("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", TestName = "DTD_source_is_refused")]
    [TestCase("<a/><!-- trailing -->", TestName = "Trailing_comment_is_refused")]
    [TestCase("<p:a/>", TestName = "Undeclared_prefix_is_refused")]
    [TestCase("", TestName = "Empty_wstrust_source_is_refused")]
    public void Wstrust_source_without_value_type_must_be_one_element(string source)
    {
        using StsSettings s = Sts.Create("type", "wstrust", "endpoint", Sts.Endpoint);
        Assert.That(Sts.Request(s, source).Error, Is.EqualTo(StsError.SourceInvalid));
    }

    [Test]
    public void Wstrust_setting_with_a_control_character_is_refused()
    {
        using StsSettings s = Sts.Create("type", "wstrust", "endpoint", Sts.Endpoint, "value_type", "urn:vt",
            "applies_to", "a\u0001b");
        Assert.That(Sts.Request(s, "t").Error, Is.EqualTo(StsError.SettingInvalid));
    }

    [Test]
    public void Wstrust_large_source_is_not_truncated()
    {
        using StsSettings s = Sts.Create("type", "wstrust", "endpoint", Sts.Endpoint, "value_type", "urn:vt");
        string source = new string('x', 100_000);
        XmlDocument doc = Envelope(Sts.Request(s, source).Body);
        Assert.That(Encoding.UTF8.GetString(Convert.FromBase64String(Text(doc, "//wsse:BinarySecurityToken"))), Is.EqualTo(source));
    }

    // ---- the shim's forms of the seed directives ----------------------------

    [Test]
    public void Param_settings_repeat_and_are_sent_in_order_after_the_type_parameters()
    {
        using StsSettings s = Sts.Create("type", "otx", "param.audience", "a1", "param.x y", "v&1", "param.audience", "a2");
        var form = Sts.Form(Sts.Request(s, "src").Body);
        Assert.That(form.Select(p => p.Key), Is.EqualTo(new[]
            { "grant_type", "subject_token", "subject_token_type", "audience", "x y", "audience" }));
        Assert.That(form.Where(p => p.Key == "audience").Select(p => p.Value), Is.EqualTo(new[] { "a1", "a2" }));
        Assert.That(Sts.One(form, "x y"), Is.EqualTo("v&1"));
    }

    [Test]
    public void A_param_setting_with_subject_token_type_replaces_the_default()
    {
        using StsSettings s = Sts.Create("type", "otx", "param.subject_token_type", "urn:x:saml");
        var form = Sts.Form(Sts.Request(s, "src").Body);
        Assert.That(form.Where(p => p.Key == "subject_token_type").Select(p => p.Value), Is.EqualTo(new[] { "urn:x:saml" }));
    }

    [Test]
    public void Client_id_default_is_the_client_id_without_one_from_client_authentication()
    {
        using StsSettings s = Sts.Create("type", "ropc", "client_id_default", "ropc-client");
        var form = Sts.Form(Sts.Request(s, "pw").Body);
        Assert.That(Sts.One(form, "client_id"), Is.EqualTo("ropc-client"));
        Assert.That(Sts.One(form, "username"), Is.EqualTo("ropc-client"));
    }

    [Test]
    public void Client_id_default_is_the_ropc_username_when_client_authentication_names_the_client()
    {
        using StsSettings s = Sts.Create("type", "ropc", "auth", "client_secret_basic", "client_id", "app",
            "client_secret", "s", "client_id_default", "svc-user");
        Sts.Built b = Sts.Request(s, "pw");
        var form = Sts.Form(b.Body);
        Assert.That(Sts.One(form, "username"), Is.EqualTo("svc-user"));
        Assert.That(form.Any(p => p.Key == "client_id"), Is.False, "basic authentication carries the client");
        Assert.That(b.Authorization, Does.StartWith("Basic "));
    }

    [Test]
    public void Client_id_default_never_replaces_an_otx_client_id()
    {
        using StsSettings s = Sts.Create("type", "otx", "client_id", "app", "client_id_default", "other");
        var form = Sts.Form(Sts.Request(s, "src").Body);
        Assert.That(Sts.One(form, "client_id"), Is.EqualTo("app"));
        Assert.That(form.Any(p => p.Value == "other"), Is.False);
    }

    [TestCase("wstrust")]
    [TestCase("otx")]
    [TestCase("ropc")]
    public void A_source_token_over_max_source_is_refused(string type)
    {
        string[] extra = type == "wstrust" ? new[] { "value_type", "urn:v" } : Array.Empty<string>();
        using StsSettings s = Sts.Create(new[] { "type", type, "endpoint", Sts.Endpoint, "max_source", "100" }.Concat(extra).ToArray());
        Assert.That(Sts.Request(s, new string('x', 100)).Error, Is.EqualTo(StsError.None));
        Assert.That(Sts.Request(s, new string('x', 101)).Error, Is.EqualTo(StsError.SourceInvalid));
    }

    [Test]
    public void Max_source_defaults_to_256_KiB()
    {
        using StsSettings s = Sts.Create("type", "otx", "endpoint", Sts.Endpoint);
        Assert.That(Sts.Request(s, new string('x', 256 * 1024), capacity: 4 << 20).Error, Is.EqualTo(StsError.None));
        Assert.That(Sts.Request(s, new string('x', 256 * 1024 + 1), capacity: 4 << 20).Error, Is.EqualTo(StsError.SourceInvalid));
    }

    [TestCase("0")]
    [TestCase("-1")]
    [TestCase("1k")]
    public void Max_source_must_be_a_positive_number_of_bytes(string value)
    {
        Assert.That(Sts.TryCreate("type", "otx", "max_source", value).Error, Is.EqualTo(StsError.SettingInvalid));
    }
}
