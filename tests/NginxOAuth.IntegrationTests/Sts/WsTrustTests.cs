using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// WS-Trust exchanges against <see cref="FakeWsTrustSts"/> through real nginx
/// (2 workers), in both syntaxes: what the STS receives (a SOAP 1.2
/// RequestSecurityToken with every field), which answers deliver which
/// target token, and how faults, hostile XML and a short Lifetime end.
/// Every test uses source tokens of its own, so the shared cache never
/// answers for another test.
/// </summary>
[TestFixture]
public sealed class WsTrustTests : NginxFixture
{
    private const string ValueType = "urn:pingidentity.com:oauth2:grant_type:validate_bearer";
    private const string LaterValueType = "urn:nginx-oauth:test:bearer";

    private FakeWsTrustSts _sts = null!;
    private int _backendPort;

    protected override async Task StartNginx(NginxInstance nginx)
    {
        _sts = await FakeWsTrustSts.StartAsync();
        _backendPort = NginxInstance.NewPort();
        string url = _sts.Endpoint;
        nginx.Start($$"""
            # the seed's source token retrieval recipe
            map $http_authorization $sts_source_token {
                default "";
                "~*^Bearer\s+(?<token>[\S]+)$" $token;
            }

            # backend: answers the X-Token header it received
            server {
                listen 127.0.0.1:{{_backendPort}};
                large_client_header_buffers 4 1m;
                location / {
                    return 200 "$http_x_token";
                }
            }

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location /seed/ {
                    STSType wstrust;
                    STSWSTrustEndpoint {{url}};
                    STSWSTrustEndpointAuth basic username=wstrust&password=2Federate;
                    STSWSTrustAppliesTo urn:nginx-oauth:seed;
                    STSWSTrustTokenType urn:bogus:token;
                    STSWSTrustValueType {{ValueType}};
                    STSVariables $sts_source_token $seed_target;
                    {{nginx.Echo("$seed_target")}}
                }

                location /later/ {
                    STSExchange wstrust {{url}} "auth=basic&username=later%20user&password=p%26w&applies_to=urn:nginx-oauth:later&value_type={{LaterValueType}}";
                    STSVariables $sts_source_token $later_target;
                    {{nginx.Echo("$later_target")}}
                }

                location /defaults/ {
                    STSExchange wstrust {{url}} "value_type=urn:vt";
                    STSVariables $sts_source_token $defaults_target;
                    {{nginx.Echo("$defaults_target")}}
                }

                location /xml/ {
                    STSExchange wstrust {{url}} "auth=basic&username=x&password=y&applies_to=urn:xml";
                    STSVariables $http_x_source $xml_target;
                    {{nginx.Echo("$xml_target")}}
                }

                location /binary/ {
                    STSExchange wstrust {{url}} "auth=basic&username=x&password=y&value_type=urn:vt";
                    STSVariables $http_x_source $binary_target;
                    {{nginx.Echo("$binary_target")}}
                }

                location /big/ {
                    STSType wstrust;
                    STSWSTrustEndpoint {{url}};
                    STSWSTrustValueType urn:vt;
                    STSVariables $sts_source_token $big_target;
                    STSPassTarget header:X-Token;
                    proxy_pass http://127.0.0.1:{{_backendPort}}/;
                }

                location /big-later/ {
                    STSExchange wstrust {{url}} "value_type=urn:vt";
                    STSVariables $sts_source_token $big_later_target;
                    proxy_set_header X-Token $big_later_target;
                    proxy_pass http://127.0.0.1:{{_backendPort}}/;
                }

                location /vars/ {
                    STSExchange wstrust {{url}} "value_type=urn:vt&applies_to=urn:aud:$arg_aud&wsa_to=https://sts.example.test/trust";
                    STSVariables $sts_source_token $vars_target;
                    {{nginx.Echo("$vars_target")}}
                }

                location /lifetime/ {
                    STSExchange wstrust {{url}} "value_type=urn:vt&cache.expiry=3600";
                    STSVariables $sts_source_token $lifetime_target;
                    {{nginx.Echo("$lifetime_target")}}
                }

                location /lifetime-seed/ {
                    STSType wstrust;
                    STSWSTrustEndpoint {{url}};
                    STSWSTrustValueType urn:vt;
                    STSCacheExpiresIn 3600;
                    STSVariables $sts_source_token $lifetime_seed_target;
                    {{nginx.Echo("$lifetime_seed_target")}}
                }
            }
            """);
    }

    protected override async Task OnStopping() => await _sts.DisposeAsync();

    private static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N");

    private Task<HttpReply> GetAsync(string path, string? bearer = null, string? source = null) =>
        Nginx.GetAsync(path, bearer, configure: source is null ? null : r => r.Headers.TryAddWithoutValidation("X-Source", source));

    private static string Basic(string user, string password) =>
        "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password));

    private static DateTimeOffset Time(string? value) =>
        DateTimeOffset.Parse(value!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);

    // ---- what the STS receives --------------------------------------------

    [Test]
    public async Task Seed_syntax_sends_a_soap12_request_security_token_with_every_configured_field()
    {
        string source = Unique("seed-src-");
        DateTimeOffset before = DateTimeOffset.UtcNow;

        HttpReply reply = await GetAsync("/seed/x", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        WsTrustRequest r = _sts.Requests.Single(x => x.SourceToken == source);
        Assert.Multiple(() =>
        {
            Assert.That(_sts.Malformed, Is.Empty, "every request is a well-formed SOAP 1.2 RST");
            Assert.That(r.Malformed, Is.False, r.MalformedReason);
            Assert.That(r.Method, Is.EqualTo("POST"));
            Assert.That(r.Path, Is.EqualTo("/adfs/services/trust/13/usernamemixed"));
            Assert.That(r.ContentType, Is.EqualTo("application/soap+xml; charset=utf-8"));
            Assert.That(r.Header("SOAPAction"), Is.EqualTo(_sts.Endpoint), "soapAction: the endpoint URL, as liboauth2-sts sends");
            Assert.That(r.To, Is.EqualTo(_sts.Endpoint));
            Assert.That(r.Action, Is.EqualTo(WsNs.Trust13 + "/RST/Issue"));
            Assert.That(r.TrustNamespace, Is.EqualTo(WsNs.Trust13));
            Assert.That(r.TokenType, Is.EqualTo("urn:bogus:token"));
            Assert.That(r.RequestType, Is.EqualTo(WsNs.Trust13 + "/Issue"));
            Assert.That(r.AppliesTo, Is.EqualTo("urn:nginx-oauth:seed"));
            Assert.That(r.KeyType, Is.EqualTo(WsNs.Trust13 + "/SymmetricKey"));
            Assert.That(r.MessageId, Does.Match("^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"));
            Assert.That(r.Authorization, Is.EqualTo(Basic("wstrust", "2Federate")));
            Assert.That(r.SourceTokenIsXml, Is.False);
            Assert.That(r.SourceTokenRaw, Is.EqualTo(Convert.ToBase64String(Encoding.UTF8.GetBytes(source))));
            Assert.That(r.SourceTokenValueType, Is.EqualTo(ValueType));
            Assert.That(r.SourceTokenEncodingType, Is.EqualTo(WsNs.Base64Binary));
            Assert.That(r.Header("Cookie"), Is.Null, "the client's headers stay away from the STS");
            Assert.That(Time(r.Expires) - Time(r.Created), Is.EqualTo(TimeSpan.FromSeconds(300)));
            Assert.That(Time(r.Created), Is.InRange(before.AddMinutes(-5), DateTimeOffset.UtcNow.AddMinutes(5)));
            Assert.That(reply.Body, Is.EqualTo(WsTrustTokens.SamlAssertion(source)), "the default answer: its assertion");
        });
    }

    [Test]
    public async Task Later_syntax_sends_the_same_request_from_its_option_string()
    {
        string source = Unique("later-src-");

        HttpReply reply = await GetAsync("/later/x", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        WsTrustRequest r = _sts.Requests.Single(x => x.SourceToken == source);
        Assert.Multiple(() =>
        {
            Assert.That(r.Malformed, Is.False, r.MalformedReason);
            Assert.That(r.ContentType, Is.EqualTo("application/soap+xml; charset=utf-8"));
            Assert.That(r.Header("SOAPAction"), Is.EqualTo(_sts.Endpoint));
            Assert.That(r.To, Is.EqualTo(_sts.Endpoint));
            Assert.That(r.Action, Is.EqualTo(WsNs.Trust13 + "/RST/Issue"));
            Assert.That(r.TokenType, Is.EqualTo(WsNs.Saml2TokenType), "not configured: the SAML 2.0 token profile URI");
            Assert.That(r.RequestType, Is.EqualTo(WsNs.Trust13 + "/Issue"));
            Assert.That(r.AppliesTo, Is.EqualTo("urn:nginx-oauth:later"));
            Assert.That(r.KeyType, Is.EqualTo(WsNs.Trust13 + "/SymmetricKey"));
            Assert.That(r.Authorization, Is.EqualTo(Basic("later user", "p&w")), "option values are percent-decoded");
            Assert.That(r.SourceTokenValueType, Is.EqualTo(LaterValueType));
            Assert.That(r.SourceTokenRaw, Is.EqualTo(Convert.ToBase64String(Encoding.UTF8.GetBytes(source))));
            Assert.That(Time(r.Expires) - Time(r.Created), Is.EqualTo(TimeSpan.FromSeconds(300)));
            Assert.That(reply.Body, Is.EqualTo(WsTrustTokens.SamlAssertion(source)));
        });
    }

    [Test]
    public async Task Without_token_type_applies_to_and_auth_the_request_has_the_defaults_and_no_authorization()
    {
        string source = Unique("defaults-src-");

        HttpReply reply = await GetAsync("/defaults/x", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        WsTrustRequest r = _sts.Requests.Single(x => x.SourceToken == source);
        Assert.That(r.Malformed, Is.False, r.MalformedReason);
        Assert.That(r.TokenType, Is.EqualTo(WsNs.Saml2TokenType));
        Assert.That(r.AppliesTo, Is.Null, "no AppliesTo without applies_to");
        Assert.That(r.Authorization, Is.Null, "auth defaults to none");
        Assert.That(r.Header("Authorization"), Is.Null, "the client's Authorization (the source) is not forwarded to the STS");
    }

    [Test]
    public async Task Applies_to_with_a_variable_is_per_request_and_part_of_the_cache_key()
    {
        string source = Unique("vars-");

        HttpReply a1 = await GetAsync("/vars/x?aud=one", source);
        HttpReply a2 = await GetAsync("/vars/x?aud=one", source);
        HttpReply b = await GetAsync("/vars/x?aud=two", source);

        Assert.That(a1.Status, Is.EqualTo(200), a1.ToString());
        Assert.That(a2.Status, Is.EqualTo(200), a2.ToString());
        Assert.That(b.Status, Is.EqualTo(200), b.ToString());
        WsTrustRequest[] calls = _sts.Requests.Where(r => r.SourceToken == source).ToArray();
        Assert.That(calls.Select(r => r.AppliesTo), Is.EqualTo(new[] { "urn:aud:one", "urn:aud:two" }),
            "the second request with aud=one is a cache hit; aud=two is another exchange");
        Assert.That(calls.Select(r => r.To), Is.All.EqualTo("https://sts.example.test/trust"), "wsa_to replaces the endpoint in wsa:To");
        Assert.That(calls.Select(r => r.Header("SOAPAction")), Is.All.EqualTo(_sts.Endpoint));
    }

    [Test]
    public async Task Xml_source_without_value_type_is_sent_as_raw_xml()
    {
        string id = "_" + Guid.NewGuid().ToString("N");
        string source = $"<saml:Assertion xmlns:saml=\"{WsNs.Saml2}\" ID=\"{id}\" Version=\"2.0\">"
            + "<saml:Issuer>urn:nginx-oauth:idp</saml:Issuer>"
            + "<saml:Subject><saml:NameID>alice &amp; bob</saml:NameID></saml:Subject></saml:Assertion>";

        HttpReply reply = await GetAsync("/xml/x", source: source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        WsTrustRequest r = _sts.Requests.Single(x => x.SourceToken == source);
        Assert.That(r.Malformed, Is.False, r.MalformedReason);
        Assert.That(r.SourceTokenIsXml, Is.True);
        Assert.That(r.SourceTokenRaw, Is.Null, "no BinarySecurityToken");
        Assert.That(r.Body, Does.Contain(source), "the element is carried byte for byte");
        Assert.That(r.AppliesTo, Is.EqualTo("urn:xml"));
        Assert.That(reply.Body, Is.EqualTo(WsTrustTokens.SamlAssertion(source)));
    }

    [TestCase("not-xml-token", TestName = "Non_xml_source_without_value_type_is_401_without_an_sts_call")]
    [TestCase("<a>one</a><b>two</b>", TestName = "Two_xml_elements_without_value_type_are_401_without_an_sts_call")]
    [TestCase("<a>x</a></wsse:Security><evil/>", TestName = "Xml_injection_without_value_type_is_401_without_an_sts_call")]
    [TestCase("<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>", TestName = "Xml_source_with_a_dtd_is_401_without_an_sts_call")]
    public async Task Unusable_source_without_value_type(string source)
    {
        source = source.Replace("one", Guid.NewGuid().ToString("N"), StringComparison.Ordinal);
        int before = _sts.Count;

        HttpReply reply = await GetAsync("/xml/x", source: source);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        Assert.That(_sts.Count, Is.EqualTo(before), "the STS is not asked");
        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*sts: rejected: .*source token");
    }

    [Test]
    public async Task Xml_injection_in_a_binary_source_arrives_intact_as_data()
    {
        string source = Unique("inject-") + "</wsse:BinarySecurityToken><x/>&amp;<![CDATA[ ]]>\"'";

        HttpReply reply = await GetAsync("/binary/x", source: source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(_sts.Malformed, Is.Empty);
        WsTrustRequest r = _sts.Requests.Single(x => x.SourceToken == source);
        Assert.That(r.SourceTokenIsXml, Is.False);
        Assert.That(r.SourceTokenValueType, Is.EqualTo("urn:vt"));
        Assert.That(r.Body, Does.Not.Contain("<x/>"), "the source is base64 inside the BinarySecurityToken");
        Assert.That(reply.Body, Is.EqualTo(WsTrustTokens.SamlAssertion(source)));
    }

    [Test]
    public async Task Request_without_a_source_token_is_401_without_an_sts_call()
    {
        int before = _sts.Count;

        HttpReply reply = await GetAsync("/seed/x");

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer"));
        Assert.That(_sts.Count, Is.EqualTo(before));
    }

    // ---- answers ------------------------------------------------------------

    private static IEnumerable<TestCaseData> AssertionAnswers()
    {
        yield return new TestCaseData(new WsTrustMode())
            .SetName("Soap12_trust13_collection_with_a_comment_before_the_assertion_delivers_the_assertion");
        yield return new TestCaseData(new WsTrustMode { Collection = false })
            .SetName("Soap12_trust13_without_collection_delivers_the_assertion");
        yield return new TestCaseData(new WsTrustMode { Soap = SoapVersion.Soap11 })
            .SetName("Soap11_trust13_collection_delivers_the_assertion");
        yield return new TestCaseData(new WsTrustMode { Soap = SoapVersion.Soap11, Trust2005 = true, Collection = false })
            .SetName("Soap11_trust2005_without_collection_delivers_the_assertion");
        yield return new TestCaseData(new WsTrustMode { Trust2005 = true })
            .SetName("Soap12_trust2005_collection_delivers_the_assertion");
        yield return new TestCaseData(new WsTrustMode { Prefix = WsTrustTokenPrefix.Element })
            .SetName("Assertion_after_another_element_is_delivered");
        yield return new TestCaseData(new WsTrustMode { Prefix = WsTrustTokenPrefix.None })
            .SetName("Assertion_as_the_first_child_is_delivered");
        yield return new TestCaseData(new WsTrustMode { Indented = true })
            .SetName("Pretty_printed_envelope_delivers_the_assertion");
        yield return new TestCaseData(new WsTrustMode { Indented = true, Soap = SoapVersion.Soap11, Trust2005 = true, IncludeLifetime = false })
            .SetName("Pretty_printed_soap11_trust2005_envelope_without_lifetime_delivers_the_assertion");
    }

    [TestCaseSource(nameof(AssertionAnswers))]
    public async Task Assertion_answer(WsTrustMode mode)
    {
        string prefix = Unique("ans-") + "-";
        _sts.SetModeForPrefix(prefix, mode);
        string source = prefix + "user";

        HttpReply reply = await GetAsync("/later/x", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo(WsTrustTokens.SamlAssertion(source)),
            "$target is the assertion exactly as the STS sent it");
        Assert.That(_sts.Calls(source), Is.EqualTo(1));
    }

    [Test]
    public async Task Assertion_using_namespaces_of_the_envelope_gets_their_declarations_and_no_others()
    {
        const string xs = "http://www.w3.org/2001/XMLSchema";
        const string xsi = "http://www.w3.org/2001/XMLSchema-instance";
        string prefix = Unique("nsanc-") + "-";
        string source = prefix + "user";
        string rest = $" ID=\"_{Guid.NewGuid():N}\" Version=\"2.0\"><saml:Issuer>urn:nginx-oauth:idp</saml:Issuer>"
            + "<saml:AttributeStatement><saml:Attribute Name=\"n\">"
            + $"<saml:AttributeValue xsi:type=\"xs:string\">{source}</saml:AttributeValue>"
            + "</saml:Attribute></saml:AttributeStatement></saml:Assertion>";
        string envelope = "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
            + $"<s:Envelope xmlns:s=\"{WsNs.Soap12}\" xmlns:wst=\"{WsNs.Trust13}\" xmlns:wsu=\"{WsNs.Wsu}\" "
            + $"xmlns:saml=\"{WsNs.Saml2}\" xmlns:xs=\"{xs}\" xmlns:xsi=\"{xsi}\" xmlns=\"urn:nginx-oauth:unused-default\">"
            + "<s:Body><wst:RequestSecurityTokenResponseCollection><wst:RequestSecurityTokenResponse>"
            + "<wst:RequestedSecurityToken><saml:Assertion" + rest + "</wst:RequestedSecurityToken>"
            + "</wst:RequestSecurityTokenResponse></wst:RequestSecurityTokenResponseCollection></s:Body></s:Envelope>";
        _sts.SetModeForPrefix(prefix, new WsTrustMode { RawBody = envelope });

        HttpReply reply = await GetAsync("/later/x", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        string target = reply.Body;
        Assert.That(target, Does.StartWith("<saml:Assertion ").And.EndWith(rest), "the element's own bytes are kept");
        string added = target["<saml:Assertion".Length..^rest.Length];
        string[] declarations = System.Text.RegularExpressions.Regex.Matches(added, " xmlns(:[A-Za-z]+)?=\"[^\"]*\"")
            .Select(m => m.Value.Trim()).Order(StringComparer.Ordinal).ToArray();
        Assert.That(string.Concat(declarations.Select(d => " " + d)).Length, Is.EqualTo(added.Length), "only declarations were added: " + added);
        Assert.That(declarations, Is.EqualTo(new[]
        {
            $"xmlns:saml=\"{WsNs.Saml2}\"", $"xmlns:xs=\"{xs}\"", $"xmlns:xsi=\"{xsi}\"",
        }), "the used ones (xs only inside xsi:type's value), not s, wst, wsu or the unused default");
        var doc = new System.Xml.XmlDocument { XmlResolver = null };
        doc.LoadXml(target);
        var value = (System.Xml.XmlElement)doc.GetElementsByTagName("AttributeValue", WsNs.Saml2)[0]!;
        Assert.That(value.GetNamespaceOfPrefix("xs"), Is.EqualTo(xs), "the QName in xsi:type still resolves");
    }

    private static IEnumerable<TestCaseData> BinaryAnswers()
    {
        yield return new TestCaseData(0, false).SetName("Binary_token_on_one_line_is_delivered_decoded");
        yield return new TestCaseData(64, false).SetName("Binary_token_wrapped_at_64_columns_with_LF_is_delivered_decoded");
        yield return new TestCaseData(64, true).SetName("Binary_token_wrapped_at_64_columns_with_CRLF_is_delivered_decoded");
        yield return new TestCaseData(76, false).SetName("Binary_token_wrapped_at_76_columns_with_LF_is_delivered_decoded");
        yield return new TestCaseData(76, true).SetName("Binary_token_wrapped_at_76_columns_with_CRLF_is_delivered_decoded");
    }

    [TestCaseSource(nameof(BinaryAnswers))]
    public async Task Binary_answer(int columns, bool crlf)
    {
        string prefix = Unique("bin-") + "-";
        WsTrustMode mode = WsTrustMode.Binary(columns, crlf) with { BinaryMinBytes = 300 };
        _sts.SetModeForPrefix(prefix, mode);
        string source = prefix + "user";

        HttpReply reply = await GetAsync("/later/x", source);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo(WsTrustTokens.BinaryValue(source, mode)));
        Assert.That(reply.Body, Has.Length.EqualTo(300), "long enough to be wrapped over several lines");
    }

    [TestCase("/big/", TestName = "Binary_token_of_20_KB_reaches_the_backend_whole_through_STSPassTarget")]
    [TestCase("/big-later/", TestName = "Binary_token_of_20_KB_reaches_the_backend_whole_through_proxy_set_header")]
    public async Task Big_binary_token(string path)
    {
        string prefix = Unique("big-") + "-";
        WsTrustMode mode = WsTrustMode.Binary(76, true) with { BinaryMinBytes = 20 * 1024 };
        _sts.SetModeForPrefix(prefix, mode);
        string source = prefix + "user";
        string expected = WsTrustTokens.BinaryValue(source, mode);

        HttpReply first = await GetAsync(path + "x", source);
        HttpReply cached = await GetAsync(path + "x", source);

        Assert.That(first.Status, Is.EqualTo(200), first.ToString());
        Assert.That(first.Body, Has.Length.EqualTo(20 * 1024));
        Assert.That(first.Body, Is.EqualTo(expected), "no truncation");
        Assert.That(cached.Status, Is.EqualTo(200));
        Assert.That(cached.Body, Is.EqualTo(expected), "the same token from the cache, whole");
        Assert.That(_sts.Calls(source), Is.EqualTo(1), "the second one came from the cache");
    }

    // ---- failures -----------------------------------------------------------

    private static IEnumerable<TestCaseData> Faults()
    {
        yield return new TestCaseData(WsTrustMode.SoapFault(SoapVersion.Soap11, WsTrustFault.InvalidRequest), "wst:InvalidRequest")
            .SetName("Soap11_fault_is_401_with_its_faultcode_in_the_log");
        yield return new TestCaseData(WsTrustMode.SoapFault(SoapVersion.Soap12), "wst:FailedAuthentication")
            .SetName("Soap12_fault_is_401_with_its_subcode_in_the_log");
        yield return new TestCaseData(WsTrustMode.SoapFault(SoapVersion.Soap12, WsTrustFault.InvalidRequest) with { Trust2005 = true },
                "wst:InvalidRequest")
            .SetName("Soap12_trust2005_fault_is_401_with_its_subcode_in_the_log");
    }

    [TestCaseSource(nameof(Faults))]
    public async Task Soap_fault(WsTrustMode mode, string code)
    {
        string prefix = Unique("fault-") + "-";
        _sts.SetModeForPrefix(prefix, mode);
        string source = prefix + "user";

        HttpReply reply = await GetAsync("/later/x", source);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer error=\"invalid_token\""));
        string line = Nginx.WaitForLogLine(TestLogMark, @"sts: rejected: .*answered 500");
        Assert.That(line, Does.Contain("[info]"));
        Assert.That(line, Does.Contain($"\"{code}\""));
        Assert.That(_sts.Calls(source), Is.EqualTo(1));
    }

    [Test]
    public async Task External_entity_answer_is_502_and_reads_no_file()
    {
        string prefix = Unique("xxe-") + "-";
        _sts.SetModeForPrefix(prefix, new WsTrustMode { ExternalEntity = true });
        string source = prefix + "user";

        HttpReply reply = await GetAsync("/later/x", source);

        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        string line = Nginx.WaitForLogLine(TestLogMark, @"\[error\].*sts: .* answered 200 with \d+ bytes");
        Assert.That(line, Does.Contain(_sts.Endpoint));
        Assert.That(line, Does.Contain("a DTD or entity declaration"));
        Assert.That(reply.Body, Does.Not.Contain("root:"));
        Assert.That(Nginx.ErrorLogSince(TestLogMark), Does.Not.Contain("root:x:0:0"), "no file content anywhere");
    }

    [Test]
    public async Task Answer_without_a_token_is_502()
    {
        string prefix = Unique("notoken-") + "-";
        _sts.SetModeForPrefix(prefix, new WsTrustMode { NoToken = true });
        string source = prefix + "user";

        HttpReply reply = await GetAsync("/later/x", source);

        Assert.That(reply.Status, Is.EqualTo(502), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*sts: .* answered 200 with \d+ bytes");
        Assert.That(_sts.Calls(source), Is.EqualTo(1));
    }

    // ---- cache lifetime -----------------------------------------------------

    [TestCase("/lifetime/", TestName = "Lifetime_shorter_than_cache_expiry_ends_the_cached_token_early")]
    [TestCase("/lifetime-seed/", TestName = "Lifetime_shorter_than_STSCacheExpiresIn_ends_the_cached_token_early")]
    public async Task Lifetime_is_honoured(string path)
    {
        string prefix = Unique("life-") + "-";
        WsTrustMode mode = WsTrustMode.Binary() with { LifetimeSeconds = 6 };
        _sts.SetModeForPrefix(prefix, mode);
        string source = prefix + "user";
        string expected = WsTrustTokens.BinaryValue(source, mode);

        HttpReply first = await GetAsync(path + "x", source);
        HttpReply hit = await GetAsync(path + "x", source);

        Assert.That(first.Status, Is.EqualTo(200), first.ToString());
        Assert.That(first.Body, Is.EqualTo(expected));
        Assert.That(hit.Body, Is.EqualTo(expected));
        Assert.That(_sts.Calls(source), Is.EqualTo(1), "the second request is answered from the cache");

        // the cache is configured for an hour: only the 6 s Lifetime can end the entry
        await Poll.UntilAsync(async () =>
        {
            HttpReply again = await GetAsync(path + "x", source);
            Assert.That(again.Body, Is.EqualTo(expected));
            return _sts.Calls(source);
        }, calls => calls >= 2, "the entry to expire with the token's Lifetime", TimeSpan.FromSeconds(40));
    }
}
