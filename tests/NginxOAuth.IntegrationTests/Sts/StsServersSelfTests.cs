using System;
using System.Collections.Generic;
using System.Linq;
using System.Net.Http;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using System.Xml;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// The STS test servers talked to directly with HttpClient (no nginx): each
/// answers what its mode says and records what it received.
/// </summary>
[TestFixture]
public sealed class StsServersSelfTests
{
    private FakeWsTrustSts _wsTrust = null!;
    private OpenIddictSts _openIddict = null!;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    [OneTimeSetUp]
    public async Task StartServers()
    {
        _wsTrust = await FakeWsTrustSts.StartAsync();
        _openIddict = await OpenIddictSts.StartAsync();
    }

    [OneTimeTearDown]
    public async Task StopServers()
    {
        await _wsTrust.DisposeAsync();
        await _openIddict.DisposeAsync();
        if (_oidcProvider is not null)
        {
            await _oidcProvider.DisposeAsync();
            _oidcProvider = null;
        }

        _http.Dispose();
    }

    // ---- WS-Trust ----

    private async Task<(int Status, string ContentType, string Body)> PostRstAsync(string source, string? body = null)
    {
        using var content = new StringContent(body ?? WsTrustAnswers.RequestSecurityToken(source, _wsTrust.Endpoint, "urn:backend"),
            Encoding.UTF8);
        content.Headers.ContentType = System.Net.Http.Headers.MediaTypeHeaderValue.Parse(
            "application/soap+xml; charset=utf-8; action=\"http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Issue\"");
        using var request = new HttpRequestMessage(HttpMethod.Post, _wsTrust.Endpoint) { Content = content };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Basic", "c3RzOnN0cw==");
        using HttpResponseMessage response = await _http.SendAsync(request);
        return ((int)response.StatusCode, response.Content.Headers.ContentType?.ToString() ?? "",
            await response.Content.ReadAsStringAsync());
    }

    private static XmlDocument Load(string xml, bool allowDtd = false)
    {
        var doc = new XmlDocument { XmlResolver = null, PreserveWhitespace = true };
        using var reader = XmlReader.Create(new System.IO.StringReader(xml), new XmlReaderSettings
        {
            DtdProcessing = allowDtd ? DtdProcessing.Parse : DtdProcessing.Prohibit,
            XmlResolver = null,
        });
        doc.Load(reader);
        return doc;
    }

    private static XmlElement? Find(XmlDocument doc, string ns, string name) =>
        doc.GetElementsByTagName(name, ns).OfType<XmlElement>().FirstOrDefault();

    [Test]
    public async Task WsTrust_request_fields_are_parsed_and_recorded()
    {
        string source = "eyJhbGciOiJSUzI1NiJ9.user-parse." + Guid.NewGuid().ToString("N");

        (int status, _, _) = await PostRstAsync(source);

        Assert.That(status, Is.EqualTo(200));
        WsTrustRequest r = _wsTrust.Requests.Single(x => x.SourceToken == source);
        Assert.Multiple(() =>
        {
            Assert.That(r.Malformed, Is.False, r.MalformedReason);
            Assert.That(r.Method, Is.EqualTo("POST"));
            Assert.That(r.Path, Is.EqualTo("/adfs/services/trust/13/usernamemixed"));
            Assert.That(r.SourceTokenIsXml, Is.False);
            Assert.That(r.SourceTokenValueType, Is.EqualTo("urn:pingidentity.com:oauth2:grant_type:validate_bearer"));
            Assert.That(r.SourceTokenEncodingType, Is.EqualTo(WsNs.Base64Binary));
            Assert.That(r.TrustNamespace, Is.EqualTo(WsNs.Trust13));
            Assert.That(r.TokenType, Is.EqualTo(WsNs.Saml2TokenType));
            Assert.That(r.RequestType, Is.EqualTo(WsNs.Trust13 + "/Issue"));
            Assert.That(r.KeyType, Is.EqualTo(WsNs.Trust13 + "/Bearer"));
            Assert.That(r.AppliesTo, Is.EqualTo("urn:backend"));
            Assert.That(r.To, Is.EqualTo(_wsTrust.Endpoint));
            Assert.That(r.Action, Is.EqualTo(WsNs.Trust13 + "/RST/Issue"));
            Assert.That(DateTimeOffset.Parse(r.Expires!, System.Globalization.CultureInfo.InvariantCulture)
                - DateTimeOffset.Parse(r.Created!, System.Globalization.CultureInfo.InvariantCulture), Is.EqualTo(TimeSpan.FromMinutes(5)));
            Assert.That(r.ContentType, Does.StartWith("application/soap+xml"));
            Assert.That(r.SoapAction, Is.EqualTo(WsNs.Trust13 + "/RST/Issue"));
            Assert.That(r.Authorization, Is.EqualTo("Basic c3RzOnN0cw=="));
            Assert.That(_wsTrust.Calls(source), Is.EqualTo(1));
        });
    }

    [Test]
    public async Task WsTrust_default_answer_is_a_soap12_collection_with_a_saml_assertion_after_a_comment()
    {
        string source = "saml-default-" + Guid.NewGuid().ToString("N");

        (int status, string contentType, string body) = await PostRstAsync(source);

        Assert.That(status, Is.EqualTo(200));
        Assert.That(contentType, Does.StartWith("application/soap+xml"));
        XmlDocument doc = Load(body);
        Assert.That(doc.DocumentElement!.NamespaceURI, Is.EqualTo(WsNs.Soap12));
        Assert.That(Find(doc, WsNs.Trust13, "RequestSecurityTokenResponseCollection"), Is.Not.Null);
        XmlElement rst = Find(doc, WsNs.Trust13, "RequestedSecurityToken")!;
        Assert.That(rst.FirstChild, Is.InstanceOf<XmlWhitespace>(), "the token is not the first node");
        Assert.That(rst.ChildNodes.OfType<XmlComment>(), Is.Not.Empty);
        XmlElement assertion = rst.ChildNodes.OfType<XmlElement>().Single();
        Assert.That(assertion.NamespaceURI, Is.EqualTo(WsNs.Saml2));
        Assert.That(assertion.GetAttribute("ID"), Is.EqualTo(WsTrustTokens.AssertionId(source)));
        Assert.That(Find(doc, WsNs.Saml2, "NameID")!.InnerText, Is.EqualTo("wst." + source));
        string sent = WsTrustTokens.SamlAssertion(source);
        Assert.That(body, Does.Contain(sent), "the assertion exactly as documented");
        Assert.That(sent, Does.Not.Contain("\n").And.Not.Contain("\r"));
        XmlElement lifetime = Find(doc, WsNs.Trust13, "Lifetime")!;
        DateTimeOffset created = DateTimeOffset.Parse(lifetime.GetElementsByTagName("Created", WsNs.Wsu)[0]!.InnerText, System.Globalization.CultureInfo.InvariantCulture);
        DateTimeOffset expires = DateTimeOffset.Parse(lifetime.GetElementsByTagName("Expires", WsNs.Wsu)[0]!.InnerText, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(expires - created, Is.EqualTo(TimeSpan.FromHours(1)));
    }

    private static IEnumerable<TestCaseData> BinaryModes()
    {
        yield return new TestCaseData(0, false).SetName("WsTrust_binary_token_on_one_line_decodes_to_the_derived_token");
        yield return new TestCaseData(64, false).SetName("WsTrust_binary_token_wrapped_at_64_with_LF_decodes_to_the_derived_token");
        yield return new TestCaseData(76, true).SetName("WsTrust_binary_token_wrapped_at_76_with_CRLF_decodes_to_the_derived_token");
    }

    [TestCaseSource(nameof(BinaryModes))]
    public async Task WsTrust_binary_token(int columns, bool crlf)
    {
        string prefix = $"bin{columns}{(crlf ? "crlf" : "lf")}-";
        _wsTrust.SetModeForPrefix(prefix, WsTrustMode.Binary(columns, crlf) with { Prefix = WsTrustTokenPrefix.Element });
        string source = prefix + new string('s', 120) + " \u00e9%"; // long enough to wrap; non-ASCII and '%' escaped

        (int status, _, string body) = await PostRstAsync(source);

        Assert.That(status, Is.EqualTo(200));
        XmlElement bst = Find(Load(body), WsNs.Wsse, "BinarySecurityToken")!;
        int start = body.IndexOf("Base64Binary\">", StringComparison.Ordinal) + "Base64Binary\">".Length;
        string text = body[start..body.IndexOf("</wsse:BinarySecurityToken>", StringComparison.Ordinal)]; // as sent (a parser folds CRLF)
        string[] lines = text.Split('\n');
        if (columns == 0)
        {
            Assert.That(lines, Has.Length.EqualTo(1));
        }
        else
        {
            Assert.That(lines.Length, Is.GreaterThan(2));
            Assert.That(lines.SkipLast(1).Select(l => l.TrimEnd('\r').Length), Is.All.EqualTo(columns));
            Assert.That(lines.SkipLast(1).All(l => l.EndsWith('\r')), Is.EqualTo(crlf));
        }

        string decoded = Encoding.UTF8.GetString(Convert.FromBase64String(text.Replace("\r", "").Replace("\n", "")));
        Assert.That(decoded, Is.EqualTo("wst." + prefix + new string('s', 120) + "%20%C3%A9%25"));
        Assert.That(decoded.All(c => c is >= '!' and <= '~'), "header-safe");
        Assert.That(bst.PreviousSibling!.PreviousSibling, Is.InstanceOf<XmlElement>(), "another element comes first");
    }

    [Test]
    public async Task WsTrust_big_binary_token_is_sent_whole()
    {
        _wsTrust.SetModeForPrefix("big-", WsTrustMode.Binary(76, true) with { BinaryMinBytes = 20 * 1024 });

        (_, _, string body) = await PostRstAsync("big-user");

        string text = Find(Load(body), WsNs.Wsse, "BinarySecurityToken")!.InnerText;
        string decoded = Encoding.UTF8.GetString(Convert.FromBase64String(text.Replace("\r\n", "")));
        Assert.That(decoded, Has.Length.EqualTo(20 * 1024));
        Assert.That(decoded, Does.StartWith("wst.big-user.abc"));
        Assert.That(decoded, Is.EqualTo(WsTrustTokens.BinaryValue("big-user", _wsTrust.ModeFor("big-user"))));
    }

    [Test]
    public async Task WsTrust_soap11_trust2005_without_collection_indented()
    {
        var lifetimeStart = new DateTimeOffset(2030, 1, 2, 3, 4, 5, TimeSpan.Zero);
        _wsTrust.SetModeForPrefix("old-", new WsTrustMode
        {
            Soap = SoapVersion.Soap11,
            Trust2005 = true,
            Collection = false,
            Indented = true,
            Created = lifetimeStart,
            Expires = lifetimeStart.AddMinutes(10),
        });

        (int status, string contentType, string body) = await PostRstAsync("old-user");

        Assert.That(status, Is.EqualTo(200));
        Assert.That(contentType, Does.StartWith("text/xml"));
        Assert.That(body.Split('\n').Length, Is.GreaterThan(10), "indented");
        XmlDocument doc = Load(body);
        Assert.That(doc.DocumentElement!.NamespaceURI, Is.EqualTo(WsNs.Soap11));
        Assert.That(Find(doc, WsNs.Trust2005, "RequestSecurityTokenResponseCollection"), Is.Null);
        Assert.That(Find(doc, WsNs.Trust2005, "RequestSecurityTokenResponse")!.ParentNode!.LocalName, Is.EqualTo("Body"));
        Assert.That(Find(doc, WsNs.Saml2, "NameID")!.InnerText, Is.EqualTo("wst.old-user"));
        Assert.That(body, Does.Contain(WsTrustTokens.SamlAssertion("old-user")), "the assertion stays on one line");
        Assert.That(Find(doc, WsNs.Wsu, "Created")!.InnerText, Is.EqualTo("2030-01-02T03:04:05.000Z"));
        Assert.That(Find(doc, WsNs.Wsu, "Expires")!.InnerText, Is.EqualTo("2030-01-02T03:14:05.000Z"));
    }

    [Test]
    public async Task WsTrust_faults_carry_the_codes_of_their_soap_version()
    {
        _wsTrust.SetModeForPrefix("fault11-", WsTrustMode.SoapFault(SoapVersion.Soap11, WsTrustFault.InvalidRequest));
        _wsTrust.SetModeForPrefix("fault12-", WsTrustMode.SoapFault(SoapVersion.Soap12));

        (int status11, _, string body11) = await PostRstAsync("fault11-user");
        (int status12, _, string body12) = await PostRstAsync("fault12-user");

        Assert.That(status11, Is.EqualTo(500));
        XmlDocument doc11 = Load(body11);
        Assert.That(doc11.GetElementsByTagName("faultcode")[0]!.InnerText, Is.EqualTo("wst:InvalidRequest"));
        Assert.That(doc11.DocumentElement!.GetNamespaceOfPrefix("wst"), Is.EqualTo(WsNs.Trust13));
        Assert.That(status12, Is.EqualTo(500));
        XmlDocument doc12 = Load(body12);
        XmlNodeList values = doc12.GetElementsByTagName("Value", WsNs.Soap12);
        Assert.That(values.Cast<XmlElement>().Select(v => v.InnerText), Is.EqualTo(new[] { "s:Sender", "wst:FailedAuthentication" }));
        Assert.That(values[1]!.ParentNode!.LocalName, Is.EqualTo("Subcode"));
    }

    [Test]
    public async Task WsTrust_external_entity_answer_is_there_to_be_refused()
    {
        _wsTrust.SetModeForPrefix("xxe-", new WsTrustMode { ExternalEntity = true });

        (_, _, string body) = await PostRstAsync("xxe-user");

        Assert.That(body, Does.Contain("<!ENTITY xxe SYSTEM \"file:///etc/passwd\">").And.Contain("<saml:NameID"));
        Assert.That(body, Does.Contain("&xxe;"));
        Assert.Throws<XmlException>(() => Load(body), "a parser that prohibits DTDs refuses it");
        XmlDocument doc = Load(body, allowDtd: true); // no resolver: the entity stays unresolved, still no file read
        Assert.That(Find(doc, WsNs.Saml2, "NameID")!.InnerText, Does.Not.Contain("root:"));
    }

    [Test]
    public async Task WsTrust_rstr_without_token_and_delay()
    {
        _wsTrust.SetModeForPrefix("notoken-", new WsTrustMode { NoToken = true, Delay = TimeSpan.FromMilliseconds(300) });
        var sw = System.Diagnostics.Stopwatch.StartNew();

        (int status, _, string body) = await PostRstAsync("notoken-user");

        Assert.That(sw.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(250)));
        Assert.That(status, Is.EqualTo(200));
        XmlDocument doc = Load(body);
        Assert.That(Find(doc, WsNs.Trust13, "RequestSecurityTokenResponse"), Is.Not.Null);
        Assert.That(Find(doc, WsNs.Trust13, "RequestedSecurityToken"), Is.Null);
    }

    [Test]
    public async Task WsTrust_xml_source_token_is_recorded_as_xml()
    {
        string rst = WsTrustAnswers.RequestSecurityToken("unused", _wsTrust.Endpoint, "urn:backend");
        string assertion = WsTrustTokens.SamlAssertion("xml-source");
        string body = rst.Replace(
            rst[rst.IndexOf("<wsse:BinarySecurityToken", StringComparison.Ordinal)..(rst.IndexOf("</wsse:BinarySecurityToken>", StringComparison.Ordinal) + "</wsse:BinarySecurityToken>".Length)],
            assertion, StringComparison.Ordinal);

        (int status, _, _) = await PostRstAsync("", body);

        Assert.That(status, Is.EqualTo(200));
        WsTrustRequest r = _wsTrust.Requests.Last();
        Assert.That(r.SourceTokenIsXml, Is.True);
        Assert.That(r.SourceToken, Does.StartWith("<saml:Assertion").And.Contain("wst.xml-source"));
    }

    [TestCase("not xml at all <<<", TestName = "WsTrust_request_that_is_not_xml_gets_a_fault_and_is_recorded_malformed")]
    [TestCase("<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>",
        TestName = "WsTrust_soap11_request_gets_a_fault_and_is_recorded_malformed")]
    [TestCase("<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body/></s:Envelope>",
        TestName = "WsTrust_envelope_without_rst_gets_a_fault_and_is_recorded_malformed")]
    public async Task WsTrust_malformed(string body)
    {
        int before = _wsTrust.Malformed.Count;

        (int status, string contentType, string answer) = await PostRstAsync("", body);

        Assert.That(status, Is.EqualTo(500));
        Assert.That(contentType, Does.StartWith("application/soap+xml"));
        Assert.That(Load(answer).GetElementsByTagName("Value", WsNs.Soap12)[0]!.InnerText, Is.EqualTo("s:Sender"));
        Assert.That(_wsTrust.Malformed.Count, Is.EqualTo(before + 1));
        Assert.That(_wsTrust.Malformed.Last().Body, Is.EqualTo(body));
    }

    [Test]
    public void WsTrust_derived_tokens_of_two_sources_differ_and_are_header_safe()
    {
        string[] sources = ["a b", "a%20b", "a\u00a0b", "a\nb", "alice", "bob"];
        string[] derived = [.. sources.Select(WsTrustTokens.Derive)];
        Assert.That(derived.Distinct().Count(), Is.EqualTo(sources.Length));
        Assert.That(derived.SelectMany(d => d), Is.All.InRange('!', '~'));
    }

    // ---- OpenIddict ----

    private static JsonElement Payload(string jwt) => JsonDocument.Parse(
        Base64UrlEncoder.Decode(jwt.Split('.')[1])).RootElement.Clone();

    private async Task<TokenValidationResult> ValidateAsync(string jwt)
    {
        var keys = new JsonWebKeySet(await _openIddict.GetJwksAsync());
        return await new JsonWebTokenHandler().ValidateTokenAsync(jwt, new TokenValidationParameters
        {
            ValidIssuer = _openIddict.BaseUrl + "/",
            ValidateAudience = false,
            IssuerSigningKeys = keys.GetSigningKeys(),
        });
    }

    [Test]
    public async Task OpenIddict_password_grant_issues_a_signed_token_for_the_user_with_a_hash_of_the_source()
    {
        string source = "source-access-token-" + Guid.NewGuid().ToString("N");

        TokenReply reply = await _openIddict.PostTokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "password",
            ["username"] = "alice",
            ["password"] = source,
            ["scope"] = "api:read",
        }, basic: (OpenIddictSts.ClientId, OpenIddictSts.ClientSecret));

        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(int.Parse(reply.Get("expires_in")!, System.Globalization.CultureInfo.InvariantCulture), Is.InRange(3590, 3600));
        Assert.That(reply.Get("token_type"), Is.EqualTo("Bearer"));
        JsonElement payload = Payload(reply.AccessToken);
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("alice"));
        Assert.That(payload.GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash(source)));
        Assert.That(payload.GetProperty("scope").GetString(), Is.EqualTo("api:read"));
        TokenValidationResult valid = await ValidateAsync(reply.AccessToken);
        Assert.That(valid.IsValid, Is.True, valid.Exception?.Message);
        StsTokenRequest recorded = _openIddict.Requests.Single(r => r.SourceToken == source);
        Assert.That(recorded.Authorization, Does.StartWith("Basic "));
        Assert.That(recorded.Field("username"), Is.EqualTo("alice"));
        Assert.That(recorded.Status, Is.EqualTo(200));
        Assert.That(_openIddict.Calls(source), Is.EqualTo(1));
    }

    [Test]
    public async Task OpenIddict_password_grant_refuses_an_unknown_user_and_an_empty_password()
    {
        TokenReply unknown = await _openIddict.PostTokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["username"] = "mallory", ["password"] = "x",
        }, basic: (OpenIddictSts.ClientId, OpenIddictSts.ClientSecret));
        TokenReply empty = await _openIddict.PostTokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = "password", ["username"] = "bob", ["password"] = "",
            ["client_id"] = OpenIddictSts.PublicClientId,
        });

        Assert.That((unknown.Status, unknown.Error), Is.EqualTo((400, "invalid_grant")), unknown.Body);
        Assert.That(empty.Status, Is.EqualTo(400), empty.Body);
    }

    [TestCase(true, TestName = "OpenIddict_client_credentials_with_client_secret_basic")]
    [TestCase(false, TestName = "OpenIddict_client_credentials_with_client_secret_post")]
    public async Task OpenIddict_client_credentials(bool basic)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "api:read api:write" };
        if (!basic)
        {
            form["client_id"] = OpenIddictSts.ClientId;
            form["client_secret"] = OpenIddictSts.ClientSecret;
        }

        TokenReply reply = await _openIddict.PostTokenAsync(form, basic ? (OpenIddictSts.ClientId, OpenIddictSts.ClientSecret) : null);

        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(Payload(reply.AccessToken).GetProperty("sub").GetString(), Is.EqualTo(OpenIddictSts.ClientId));
        StsTokenRequest recorded = _openIddict.Requests.Last(r => r.Response?.TryGetProperty("access_token", out JsonElement t) == true
            && t.GetString() == reply.AccessToken);
        Assert.That(recorded.Authorization is not null, Is.EqualTo(basic));
        Assert.That(recorded.Field("client_secret") is not null, Is.EqualTo(!basic));
    }

    [TestCase(true, TestName = "OpenIddict_wrong_secret_is_invalid_client_with_basic")]
    [TestCase(false, TestName = "OpenIddict_wrong_secret_is_invalid_client_with_post")]
    public async Task OpenIddict_wrong_secret(bool basic)
    {
        var form = new Dictionary<string, string> { ["grant_type"] = "client_credentials" };
        if (!basic)
        {
            form["client_id"] = OpenIddictSts.ClientId;
            form["client_secret"] = "wrong";
        }

        TokenReply reply = await _openIddict.PostTokenAsync(form, basic ? (OpenIddictSts.ClientId, "wrong") : null);

        Assert.That(reply.Status, Is.EqualTo(400).Or.EqualTo(401), reply.Body);
        Assert.That(reply.Error, Is.EqualTo("invalid_client"));
    }

    [Test]
    public async Task OpenIddict_token_exchange_keeps_the_subject_and_adds_the_requested_audience_scope_and_resource()
    {
        _openIddict.AccessTokenLifetime = TimeSpan.FromSeconds(3600);
        string subject = await _openIddict.IssueAccessTokenAsync(username: "bob", password: "bobs-source");

        TokenReply reply = await _openIddict.PostTokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = OpenIddictSts.TokenExchangeGrant,
            ["subject_token"] = subject,
            ["subject_token_type"] = OpenIddictSts.AccessTokenType,
            ["audience"] = "backend-service",
            ["resource"] = "https://backend.example.test/",
            ["scope"] = "api:read",
        }, basic: (OpenIddictSts.ClientId, OpenIddictSts.ClientSecret));

        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(reply.Get("issued_token_type"), Is.EqualTo(OpenIddictSts.AccessTokenType));
        JsonElement payload = Payload(reply.AccessToken);
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo("bob"));
        Assert.That(payload.GetProperty("src").GetString(), Is.EqualTo(OpenIddictSts.SourceHash("bobs-source")));
        Assert.That(payload.GetProperty("act_client").GetString(), Is.EqualTo(OpenIddictSts.ClientId));
        Assert.That(payload.GetProperty("scope").GetString(), Is.EqualTo("api:read"));
        Assert.That(payload.GetProperty("aud").GetString(), Is.EqualTo("https://backend.example.test/"),
            "OpenIddict makes the requested resources the audience when there are any");
        Assert.That(payload.GetProperty("requested_audience").GetString(), Is.EqualTo("backend-service"));
        Assert.That(payload.GetProperty("requested_resource").ToString(), Does.Contain("https://backend.example.test/"));
        Assert.That((await ValidateAsync(reply.AccessToken)).IsValid, Is.True);
        Assert.That(_openIddict.Calls(subject), Is.EqualTo(1));
        Assert.That(_openIddict.Requests.Single(r => r.SourceToken == subject).Field("audience"), Is.EqualTo("backend-service"));
    }

    [Test]
    public async Task OpenIddict_token_exchange_of_a_client_credentials_token_by_the_public_client_with_a_short_lifetime()
    {
        string subject = await _openIddict.IssueAccessTokenAsync();
        var short_ = new Dictionary<string, string>
        {
            ["grant_type"] = OpenIddictSts.TokenExchangeGrant,
            ["client_id"] = OpenIddictSts.PublicClientId,
            ["subject_token"] = subject,
            ["subject_token_type"] = OpenIddictSts.AccessTokenType,
        };

        TokenReply reply;
        _openIddict.AccessTokenLifetime = TimeSpan.FromSeconds(120);
        try
        {
            reply = await _openIddict.PostTokenAsync(short_);
        }
        finally
        {
            _openIddict.AccessTokenLifetime = TimeSpan.FromSeconds(3600);
        }

        Assert.That(reply.Status, Is.EqualTo(200), reply.Body);
        Assert.That(int.Parse(reply.Get("expires_in")!, System.Globalization.CultureInfo.InvariantCulture), Is.InRange(110, 120));
        JsonElement payload = Payload(reply.AccessToken);
        Assert.That(payload.GetProperty("sub").GetString(), Is.EqualTo(OpenIddictSts.ClientId));
        Assert.That(payload.GetProperty("act_client").GetString(), Is.EqualTo(OpenIddictSts.PublicClientId));
        Assert.That(payload.GetProperty("aud").GetString(), Is.EqualTo("api"), "no audience nor resource asked: the default");
    }

    [Test]
    public async Task OpenIddict_issuer_stays_the_same_whatever_host_header_a_proxy_sends()
    {
        string subject = await _openIddict.IssueAccessTokenAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, _openIddict.TokenEndpoint)
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = OpenIddictSts.TokenExchangeGrant,
                ["client_id"] = OpenIddictSts.ClientId,
                ["client_secret"] = OpenIddictSts.ClientSecret,
                ["subject_token"] = subject,
                ["subject_token_type"] = OpenIddictSts.AccessTokenType,
            }),
        };
        request.Headers.Host = "sts.example.test";

        using HttpResponseMessage response = await _http.SendAsync(request);
        string body = await response.Content.ReadAsStringAsync();

        Assert.That((int)response.StatusCode, Is.EqualTo(200), body);
        string issued = JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!;
        Assert.That(Payload(issued).GetProperty("iss").GetString(), Is.EqualTo(_openIddict.BaseUrl + "/"));
        Assert.That(_openIddict.Requests.Last().Headers["Host"], Is.EqualTo("sts.example.test"));
    }

    [TestCase("not-a-token", TestName = "OpenIddict_token_exchange_of_garbage_is_invalid_grant")]
    [TestCase("eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ4In0.c2ln", TestName = "OpenIddict_token_exchange_of_a_forged_jwt_is_invalid_grant")]
    public async Task OpenIddict_bad_subject_token(string subject)
    {
        TokenReply reply = await _openIddict.PostTokenAsync(new Dictionary<string, string>
        {
            ["grant_type"] = OpenIddictSts.TokenExchangeGrant,
            ["subject_token"] = subject,
            ["subject_token_type"] = OpenIddictSts.AccessTokenType,
        }, basic: (OpenIddictSts.ClientId, OpenIddictSts.ClientSecret));

        Assert.That((reply.Status, reply.Error), Is.EqualTo((400, "invalid_grant")), reply.Body);
        Assert.That(_openIddict.Requests.Last(r => r.SourceToken == subject).Status, Is.EqualTo(400));
    }

    // ---- oidc-provider ----

    private static async Task<OidcProviderServer> OidcProviderAsync() => _oidcProvider ??= await OidcProviderServer.StartAsync();

    private static OidcProviderServer? _oidcProvider;

    private static Dictionary<string, string> ExchangeForm(string clientId, string assertion, string subject) => new()
    {
        ["grant_type"] = OidcProviderServer.TokenExchangeGrant,
        ["client_id"] = clientId,
        ["client_assertion_type"] = OidcProviderServer.ClientAssertionType,
        ["client_assertion"] = assertion,
        ["subject_token"] = subject,
        ["subject_token_type"] = OidcProviderServer.AccessTokenType,
        ["audience"] = "backend-service",
        ["scope"] = "api:read",
    };

    [TestCase(true, TestName = "OidcProvider_exchanges_its_token_for_a_client_authenticated_by_client_secret_jwt")]
    [TestCase(false, TestName = "OidcProvider_exchanges_its_token_for_a_client_authenticated_by_private_key_jwt")]
    public async Task OidcProvider_exchange(bool secretJwt)
    {
        OidcProviderServer idp = await OidcProviderAsync();
        string subject = await idp.GetSourceAccessTokenAsync();
        string client = secretJwt ? OidcProviderServer.SecretJwtClientId : OidcProviderServer.KeyJwtClientId;
        string assertion = secretJwt ? idp.ClientSecretJwtAssertion() : idp.PrivateKeyJwtAssertion();

        (int status, string body) = await idp.PostTokenAsync(ExchangeForm(client, assertion, subject));

        Assert.That(status, Is.EqualTo(200), body);
        JsonElement json = JsonDocument.Parse(body).RootElement;
        string issued = json.GetProperty("access_token").GetString()!;
        Assert.That(issued, Is.Not.Empty.And.Not.EqualTo(subject));
        Assert.That(json.GetProperty("issued_token_type").GetString(), Is.EqualTo(OidcProviderServer.AccessTokenType));
        Assert.That(json.GetProperty("scope").GetString(), Is.EqualTo("api:read"));

        (int istatus, string ibody) = await idp.PostTokenAsync(new Dictionary<string, string> { ["token"] = issued },
            basic: (OidcProviderServer.GatewayClientId, OidcProviderServer.GatewayClientSecret), path: "/token/introspection");
        JsonElement introspected = JsonDocument.Parse(ibody).RootElement;
        Assert.That(istatus, Is.EqualTo(200), ibody);
        Assert.That(introspected.GetProperty("active").GetBoolean(), Is.True, ibody);
        Assert.That(introspected.GetProperty("sub").GetString(), Is.EqualTo(OidcProviderServer.AppClientId), ibody);
        Assert.That(introspected.GetProperty("client_id").GetString(), Is.EqualTo(client), ibody);
        Assert.That(introspected.GetProperty("aud").GetString(), Is.EqualTo("backend-service"), ibody);
        Assert.That(introspected.GetProperty("act").GetProperty("sub").GetString(), Is.EqualTo(client), ibody);

        // the request line arrives on stdout a moment after the answer
        OidcProviderRequest recorded = (await Poll.UntilAsync(
            () => idp.Requests.LastOrDefault(r => r.Param("subject_token") == subject),
            r => r is not null, "oidc-provider's record of the exchange"))!;
        Assert.That(recorded.ClientId, Is.EqualTo(client));
        Assert.That(recorded.Status, Is.EqualTo(200));
        Assert.That(recorded.Param("client_assertion"), Is.EqualTo(assertion));
        Assert.That(recorded.Authorization, Is.Null);
    }

    [Test]
    public async Task OidcProvider_refuses_an_assertion_signed_by_another_key_and_an_unknown_subject_token()
    {
        OidcProviderServer idp = await OidcProviderAsync();
        string subject = await idp.GetSourceAccessTokenAsync();
        using var other = System.Security.Cryptography.RSA.Create(2048);
        string forged = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = OidcProviderServer.KeyJwtClientId,
            Audience = idp.TokenEndpoint,
            Claims = new Dictionary<string, object> { ["sub"] = OidcProviderServer.KeyJwtClientId, ["jti"] = Guid.NewGuid().ToString("N") },
            Expires = DateTime.UtcNow.AddMinutes(1),
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(other) { KeyId = OidcProviderServer.KeyId }, SecurityAlgorithms.RsaSha256),
        });

        (int badClient, string badClientBody) = await idp.PostTokenAsync(ExchangeForm(OidcProviderServer.KeyJwtClientId, forged, subject));
        (int badGrant, string badGrantBody) = await idp.PostTokenAsync(
            ExchangeForm(OidcProviderServer.SecretJwtClientId, idp.ClientSecretJwtAssertion(), "not-a-token-it-issued"));

        Assert.That((badClient, JsonDocument.Parse(badClientBody).RootElement.GetProperty("error").GetString()),
            Is.EqualTo((401, "invalid_client")), badClientBody);
        Assert.That((badGrant, JsonDocument.Parse(badGrantBody).RootElement.GetProperty("error").GetString()),
            Is.EqualTo((400, "invalid_grant")), badGrantBody);
        Assert.That(JsonDocument.Parse(idp.PrivateJwk).RootElement.GetProperty("d").GetString(), Is.Not.Empty);
        Assert.That(idp.PublicJwk, Does.Not.Contain("\"d\""));
    }

    // ---- FaultyServer ----

    private static async Task<Exception?> FailureOf(Func<Task> call)
    {
        try
        {
            await call();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    [Test]
    public async Task Faulty_status_and_delay_answer_json()
    {
        await using FaultyServer server = FaultyServer.Start(Fault.WithStatus(503, "{\"error\":\"temporarily_unavailable\"}"));
        using HttpResponseMessage r503 = await _http.PostAsync(server.BaseUrl + "/token", new StringContent("a=b"));
        Assert.That((int)r503.StatusCode, Is.EqualTo(503));
        Assert.That(await r503.Content.ReadAsStringAsync(), Is.EqualTo("{\"error\":\"temporarily_unavailable\"}"));

        server.Mode = Fault.Delayed(TimeSpan.FromMilliseconds(300));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using HttpResponseMessage delayed = await _http.PostAsync(server.BaseUrl + "/token", new StringContent("grant_type=x"));
        Assert.That(sw.Elapsed, Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(250)));
        Assert.That(JsonDocument.Parse(await delayed.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString(),
            Is.EqualTo("faulty-server-token"));
        Assert.That(server.Connections, Is.EqualTo(2));
        Assert.That(server.Requests[1], Does.StartWith("POST /token HTTP/1.1").And.EndWith("grant_type=x"));
    }

    [Test]
    public async Task Faulty_huge_body_is_exactly_the_size_asked()
    {
        await using FaultyServer server = FaultyServer.Start(Fault.HugeBody(3 * 1024 * 1024));
        byte[] body = await _http.GetByteArrayAsync(server.BaseUrl + "/");
        Assert.That(body, Has.Length.EqualTo(3 * 1024 * 1024));
        Assert.That(JsonDocument.Parse(body).RootElement.GetProperty("access_token").GetString()!.Length, Is.EqualTo(3 * 1024 * 1024 - 19));
    }

    private static IEnumerable<TestCaseData> TransportFaults()
    {
        yield return new TestCaseData(Fault.Reset()).SetName("Faulty_reset_fails_the_request");
        yield return new TestCaseData(Fault.Garbage()).SetName("Faulty_garbage_fails_the_request");
        yield return new TestCaseData(Fault.Truncated()).SetName("Faulty_truncated_body_fails_the_request");
        yield return new TestCaseData(Fault.ChunkedWithoutLastChunk()).SetName("Faulty_chunked_body_without_last_chunk_fails_the_request");
    }

    [TestCaseSource(nameof(TransportFaults))]
    public async Task Faulty_transport(Fault fault)
    {
        await using FaultyServer server = FaultyServer.Start(fault);

        Exception? failure = await FailureOf(async () =>
        {
            using HttpResponseMessage r = await _http.PostAsync(server.BaseUrl + "/token", new StringContent("a=b"));
            _ = await r.Content.ReadAsByteArrayAsync();
        });

        Assert.That(failure, Is.InstanceOf<HttpRequestException>().Or.InstanceOf<System.IO.IOException>(), failure?.ToString());
        Assert.That(server.Connections, Is.GreaterThanOrEqualTo(1));
        Assert.That(server.Requests[0], Does.StartWith("POST /token"));
    }

    [Test]
    public async Task Faulty_reset_is_a_connection_reset()
    {
        await using FaultyServer server = FaultyServer.Start(Fault.Reset());
        using var client = new TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, server.Port);
        NetworkStream stream = client.GetStream();
        await stream.WriteAsync("GET / HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());

        var e = Assert.CatchAsync<System.IO.IOException>(async () =>
        {
            byte[] buffer = new byte[100];
            while (await stream.ReadAsync(buffer) > 0)
            {
            }
        });
        Assert.That(e!.InnerException, Is.InstanceOf<SocketException>());
        Assert.That(((SocketException)e.InnerException!).SocketErrorCode, Is.EqualTo(SocketError.ConnectionReset));
    }

    [Test]
    public async Task Faulty_hang_never_answers()
    {
        await using FaultyServer server = FaultyServer.Start(Fault.Hang());
        using var quick = new HttpClient { Timeout = TimeSpan.FromMilliseconds(500) };

        Exception? failure = await FailureOf(() => quick.GetAsync(server.BaseUrl + "/"));

        Assert.That(failure, Is.InstanceOf<TaskCanceledException>());
        Assert.That(server.Connections, Is.EqualTo(1));
        Assert.That(server.Answered, Is.EqualTo(0));
    }

    [Test]
    public async Task Faulty_refused_port_refuses()
    {
        int port = FaultyServer.RefusedPort();

        Exception? failure = await FailureOf(() => _http.GetAsync($"http://127.0.0.1:{port}/"));

        Assert.That(failure, Is.InstanceOf<HttpRequestException>());
        Assert.That(((HttpRequestException)failure!).InnerException, Is.InstanceOf<SocketException>()
            .With.Property(nameof(SocketException.SocketErrorCode)).EqualTo(SocketError.ConnectionRefused));
    }
}
