using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using System.Xml;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using NginxOAuth.IntegrationTests.Harness;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>
/// A request <see cref="FakeWsTrustSts"/> received, with what it parsed out of
/// the RequestSecurityToken envelope (null when absent).
/// </summary>
public sealed record WsTrustRequest
{
    public required string Method { get; init; }
    public required string Path { get; init; }
    public required IReadOnlyDictionary<string, string> Headers { get; init; }

    /// <summary>The body as received (UTF-8).</summary>
    public required string Body { get; init; }

    /// <summary>Not well-formed XML, not a SOAP 1.2 envelope, or no RequestSecurityToken in its Body.</summary>
    public bool Malformed { get; init; }

    public string? MalformedReason { get; init; }

    /// <summary>The namespace of the RequestSecurityToken (WS-Trust 1.3 or 2005/02).</summary>
    public string? TrustNamespace { get; init; }

    /// <summary>
    /// The source token: the base64-decoded text of a wsse:BinarySecurityToken, or,
    /// when it came as XML (inside wst:OnBehalfOf / wst:ActAs, or an element of
    /// wsse:Security other than Timestamp), the raw inner XML of that wrapper (OnBehalfOf/ActAs)
    /// or the raw outer XML of the element.
    /// </summary>
    public string? SourceToken { get; init; }

    /// <summary>The BinarySecurityToken's text as sent (base64, maybe wrapped).</summary>
    public string? SourceTokenRaw { get; init; }

    public bool SourceTokenIsXml { get; init; }
    public string? SourceTokenValueType { get; init; }
    public string? SourceTokenEncodingType { get; init; }
    public string? TokenType { get; init; }
    public string? RequestType { get; init; }
    public string? AppliesTo { get; init; }
    public string? KeyType { get; init; }
    public string? To { get; init; }
    public string? Action { get; init; }
    public string? MessageId { get; init; }
    public string? Created { get; init; }
    public string? Expires { get; init; }

    public string? ContentType => Header("Content-Type");

    /// <summary>The SOAPAction header, or the action parameter of an application/soap+xml Content-Type.</summary>
    public string? SoapAction { get; init; }

    public string? Authorization => Header("Authorization");

    public string? Header(string name) => Headers.TryGetValue(name, out string? v) ? v : null;
}

/// <summary>
/// A WS-Trust STS on Kestrel at 127.0.0.1 (ephemeral port): every POST is
/// parsed as a SOAP 1.2 RequestSecurityToken (XmlDocument, no DTD, no
/// resolver) and recorded; a malformed one gets a SOAP 1.2 Sender fault with
/// HTTP 500.  A well-formed one gets the answer of <see cref="ModeFor"/>: the
/// mode set for the longest matching source-token prefix (<see cref="SetModeForPrefix"/>),
/// else <see cref="Mode"/>.  The issued token is <see cref="WsTrustTokens.Derive"/>
/// of the source token (as the NameID of a SAML 2.0 assertion, or the decoded
/// value of a BinarySecurityToken).
/// </summary>
public sealed class FakeWsTrustSts : IAsyncDisposable, IDisposable
{
    private WebApplication _app = null!;
    private readonly ConcurrentQueue<WsTrustRequest> _requests = new();
    private readonly ConcurrentDictionary<string, WsTrustMode> _prefixModes = new(StringComparer.Ordinal);

    private FakeWsTrustSts()
    {
    }

    public int Port { get; private set; }

    /// <summary>http://127.0.0.1:port</summary>
    public string BaseUrl => $"http://127.0.0.1:{Port}";

    /// <summary>The STS endpoint (any path answers; this one is conventional).</summary>
    public string Endpoint => BaseUrl + "/adfs/services/trust/13/usernamemixed";

    /// <summary>The answer for tokens no prefix matches; set it per test.</summary>
    public WsTrustMode Mode { get; set; } = WsTrustMode.Default;

    public static async Task<FakeWsTrustSts> StartAsync()
    {
        var sts = new FakeWsTrustSts();
        (sts._app, sts.Port) = await LoopbackKestrel.StartAsync(sts.HandleAsync).ConfigureAwait(false);
        return sts;
    }

    /// <summary>Source tokens starting with <paramref name="prefix"/> get <paramref name="mode"/> (longest prefix wins).</summary>
    public void SetModeForPrefix(string prefix, WsTrustMode mode) => _prefixModes[prefix] = mode;

    public void ClearPrefixModes() => _prefixModes.Clear();

    public WsTrustMode ModeFor(string? sourceToken)
    {
        if (sourceToken is not null)
        {
            string? best = _prefixModes.Keys
                .Where(p => sourceToken.StartsWith(p, StringComparison.Ordinal))
                .OrderByDescending(p => p.Length)
                .FirstOrDefault();
            if (best is not null)
            {
                return _prefixModes[best];
            }
        }

        return Mode;
    }

    public IReadOnlyList<WsTrustRequest> Requests => _requests.ToList();

    /// <summary>All requests received.</summary>
    public int Count => _requests.Count;

    /// <summary>Requests whose source token was <paramref name="sourceToken"/>.</summary>
    public int Calls(string sourceToken) => _requests.Count(r => r.SourceToken == sourceToken);

    public IReadOnlyList<WsTrustRequest> Malformed => _requests.Where(r => r.Malformed).ToList();

    public void ResetCounts() => _requests.Clear();

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    private async Task HandleAsync(HttpContext context)
    {
        string body;
        using (var reader = new StreamReader(context.Request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync().ConfigureAwait(false);
        }

        var headers = context.Request.Headers.ToDictionary(h => h.Key, h => h.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        WsTrustRequest request = Parse(context.Request.Method, context.Request.Path.Value ?? "/", headers, body);
        _requests.Enqueue(request);

        int status;
        string answer;
        SoapVersion soap;
        TimeSpan delay = TimeSpan.Zero;
        if (request.Malformed)
        {
            (status, answer, soap) = (500, WsTrustAnswers.Fault(SoapVersion.Soap12, false, "Sender", null,
                "malformed request: " + request.MalformedReason), SoapVersion.Soap12);
        }
        else
        {
            WsTrustMode mode = ModeFor(request.SourceToken);
            soap = mode.Soap;
            delay = mode.Delay;
            (status, answer) = mode.RawBody is not null
                ? (mode.Status, mode.RawBody)
                : WsTrustAnswers.Build(mode, request.SourceToken ?? "", request);
        }

        if (delay > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(delay, context.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        byte[] bytes = Encoding.UTF8.GetBytes(answer);
        context.Response.StatusCode = status;
        context.Response.ContentType = soap == SoapVersion.Soap12
            ? "application/soap+xml; charset=utf-8"
            : "text/xml; charset=utf-8";
        context.Response.ContentLength = bytes.Length;
        try
        {
            await context.Response.Body.WriteAsync(bytes, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // nginx gave up
        }
    }

    /// <summary>Parses a RequestSecurityToken envelope (exposed for tests of the parser itself).</summary>
    public static WsTrustRequest Parse(string method, string path, IReadOnlyDictionary<string, string> headers, string body)
    {
        string? soapAction = headers.TryGetValue("SOAPAction", out string? sa) ? sa.Trim('"') : null;
        if (soapAction is null && headers.TryGetValue("Content-Type", out string? ct))
        {
            foreach (string part in ct.Split(';').Skip(1))
            {
                string p = part.Trim();
                if (p.StartsWith("action=", StringComparison.OrdinalIgnoreCase))
                {
                    soapAction = p["action=".Length..].Trim('"');
                }
            }
        }

        var request = new WsTrustRequest { Method = method, Path = path, Headers = headers, Body = body, SoapAction = soapAction };

        var doc = new XmlDocument { XmlResolver = null, PreserveWhitespace = true };
        try
        {
            using var reader = XmlReader.Create(new StringReader(body),
                new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null });
            doc.Load(reader);
        }
        catch (XmlException e)
        {
            return request with { Malformed = true, MalformedReason = "not well-formed XML: " + e.Message };
        }

        XmlElement? envelope = doc.DocumentElement;
        if (envelope is null || envelope.LocalName != "Envelope" || envelope.NamespaceURI != WsNs.Soap12)
        {
            return request with
            {
                Malformed = true,
                MalformedReason = $"root is {{{envelope?.NamespaceURI}}}{envelope?.LocalName}, not a SOAP 1.2 Envelope",
            };
        }

        XmlElement? header = Child(envelope, WsNs.Soap12, "Header");
        XmlElement? soapBody = Child(envelope, WsNs.Soap12, "Body");
        XmlElement? rst = soapBody is null ? null
            : Child(soapBody, WsNs.Trust13, "RequestSecurityToken") ?? Child(soapBody, WsNs.Trust2005, "RequestSecurityToken");
        if (rst is null)
        {
            return request with { Malformed = true, MalformedReason = "no RequestSecurityToken in the SOAP 1.2 Body" };
        }

        string trust = rst.NamespaceURI;
        XmlElement? security = header is null ? null : Child(header, WsNs.Wsse, "Security");
        XmlElement? timestamp = security is null ? null : Child(security, WsNs.Wsu, "Timestamp");

        request = request with
        {
            TrustNamespace = trust,
            TokenType = Child(rst, trust, "TokenType")?.InnerText.Trim(),
            RequestType = Child(rst, trust, "RequestType")?.InnerText.Trim(),
            KeyType = Child(rst, trust, "KeyType")?.InnerText.Trim(),
            AppliesTo = AppliesTo(rst),
            To = header is null ? null : Child(header, WsNs.Addressing, "To")?.InnerText.Trim(),
            Action = header is null ? null : Child(header, WsNs.Addressing, "Action")?.InnerText.Trim(),
            MessageId = header is null ? null : Child(header, WsNs.Addressing, "MessageID")?.InnerText.Trim(),
            Created = timestamp is null ? null : Child(timestamp, WsNs.Wsu, "Created")?.InnerText.Trim(),
            Expires = timestamp is null ? null : Child(timestamp, WsNs.Wsu, "Expires")?.InnerText.Trim(),
        };

        if (doc.GetElementsByTagName("BinarySecurityToken", WsNs.Wsse).OfType<XmlElement>().FirstOrDefault() is { } bst)
        {
            string raw = bst.InnerText;
            string decoded;
            try
            {
                decoded = Encoding.UTF8.GetString(Convert.FromBase64String(raw));
            }
            catch (FormatException)
            {
                return request with
                {
                    SourceTokenRaw = raw,
                    Malformed = true,
                    MalformedReason = "BinarySecurityToken is not base64",
                };
            }

            return request with
            {
                SourceToken = decoded,
                SourceTokenRaw = raw,
                SourceTokenValueType = bst.GetAttribute("ValueType"),
                SourceTokenEncodingType = bst.GetAttribute("EncodingType"),
            };
        }

        XmlElement? wrapper = Child(rst, trust, "OnBehalfOf") ?? Child(rst, trust, "ActAs");
        if (wrapper is not null)
        {
            return request with { SourceToken = wrapper.InnerXml, SourceTokenIsXml = true };
        }

        XmlElement? xmlToken = security?.ChildNodes.OfType<XmlElement>()
            .FirstOrDefault(e => !(e.LocalName == "Timestamp" && e.NamespaceURI == WsNs.Wsu));
        if (xmlToken is not null)
        {
            return request with { SourceToken = xmlToken.OuterXml, SourceTokenIsXml = true };
        }

        return request;
    }

    private static string? AppliesTo(XmlElement rst)
    {
        XmlElement? applies = rst.ChildNodes.OfType<XmlElement>().FirstOrDefault(e => e.LocalName == "AppliesTo");
        if (applies is null)
        {
            return null;
        }

        XmlElement? address = applies.GetElementsByTagName("*").OfType<XmlElement>().FirstOrDefault(e => e.LocalName == "Address");
        return (address ?? applies).InnerText.Trim();
    }

    private static XmlElement? Child(XmlElement parent, string ns, string name) =>
        parent.ChildNodes.OfType<XmlElement>().FirstOrDefault(e => e.LocalName == name && e.NamespaceURI == ns);
}

/// <summary>Builds the fake STS's answers (exposed so tests can compute exactly what was sent).</summary>
public static class WsTrustAnswers
{
    /// <summary>The status and body <see cref="FakeWsTrustSts"/> answers under <paramref name="mode"/>.</summary>
    public static (int Status, string Body) Build(WsTrustMode mode, string source, WsTrustRequest? request = null)
    {
        string trustNs = mode.Trust2005 ? WsNs.Trust2005 : WsNs.Trust13;
        if (mode.Fault != WsTrustFault.None)
        {
            string code = mode.Fault == WsTrustFault.InvalidRequest ? "InvalidRequest" : "FailedAuthentication";
            string reason = mode.Fault == WsTrustFault.InvalidRequest ? "The request was invalid or malformed" : "Authentication of the source token failed";
            return (500, Fault(mode.Soap, mode.Trust2005, "Sender", code, reason));
        }

        string soapNs = mode.Soap == SoapVersion.Soap12 ? WsNs.Soap12 : WsNs.Soap11;
        DateTimeOffset created = mode.Created ?? DateTimeOffset.UtcNow;
        DateTimeOffset expires = mode.Expires ?? created.AddSeconds(mode.LifetimeSeconds);

        string tokenXml = mode.Token == WsTrustTokenShape.Saml2Assertion
            ? WsTrustTokens.SamlAssertion(source, mode.ExternalEntity)
            : $"<wsse:BinarySecurityToken xmlns:wsse=\"{WsNs.Wsse}\" ValueType=\"{WsNs.FakeBinaryValueType}\" "
                + $"EncodingType=\"{WsNs.Base64Binary}\">"
                + (mode.ExternalEntity ? "&xxe;" : WsTrustTokens.WrappedBase64(WsTrustTokens.BinaryValue(source, mode), mode.WrapColumns, mode.CrLf))
                + "</wsse:BinarySecurityToken>";
        string prefix = mode.Prefix switch
        {
            WsTrustTokenPrefix.Comment => "\n  <!-- the issued token follows -->\n  ",
            WsTrustTokenPrefix.Element => "\n  <fake:Note xmlns:fake=\"urn:nginx-oauth:fake-sts\">not the token</fake:Note>\n  ",
            _ => "",
        };

        var rstr = new Node("wst:RequestSecurityTokenResponse");
        if (mode.IncludeLifetime)
        {
            rstr.Add(new Node("wst:Lifetime",
                new Node("wsu:Created", Time(created)),
                new Node("wsu:Expires", Time(expires))));
        }

        if (request?.AppliesTo is { } appliesTo)
        {
            rstr.Add(new Node($"wsp:AppliesTo xmlns:wsp=\"{WsNs.Policy}\"",
                new Node("wsa:EndpointReference", new Node("wsa:Address", WsTrustTokens.Xml(appliesTo)))));
        }

        if (!mode.NoToken)
        {
            rstr.Add(new Node("wst:RequestedSecurityToken", prefix + tokenXml));
        }

        rstr.Add(new Node("wst:TokenType", mode.Token == WsTrustTokenShape.Saml2Assertion ? WsNs.Saml2TokenType : WsNs.FakeBinaryValueType));
        rstr.Add(new Node("wst:RequestType", trustNs + "/Issue"));
        rstr.Add(new Node("wst:KeyType", trustNs + (mode.Trust2005 ? "/NoProofKey" : "/Bearer")));

        Node payload = mode.Collection ? new Node("wst:RequestSecurityTokenResponseCollection", rstr) : rstr;
        string action = mode.Trust2005 ? WsNs.Trust2005 + "/RSTR/Issue" : WsNs.Trust13 + "/RSTRC/IssueFinal";
        var envelope = new Node(
            $"s:Envelope xmlns:s=\"{soapNs}\" xmlns:wsa=\"{WsNs.Addressing}\" xmlns:wsu=\"{WsNs.Wsu}\" xmlns:wst=\"{trustNs}\"",
            new Node("s:Header", new Node("wsa:Action s:mustUnderstand=\"1\"", action),
                new Node("wsa:RelatesTo", WsTrustTokens.Xml(request?.MessageId ?? "urn:uuid:00000000-0000-0000-0000-000000000000"))),
            new Node("s:Body", payload));

        var sb = new StringBuilder("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
        if (mode.ExternalEntity)
        {
            sb.Append("\n<!DOCTYPE s:Envelope [\n  <!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>");
        }

        if (mode.Indented || mode.ExternalEntity)
        {
            sb.Append('\n');
        }

        envelope.Render(sb, mode.Indented ? 0 : -1);
        return (mode.Status, sb.ToString());
    }

    /// <summary>
    /// A SOAP fault: 1.1 faultcode wst:{subcode} (or soap:{code} without one),
    /// 1.2 Code/Value soap:{code} with Subcode/Value wst:{subcode}.
    /// </summary>
    public static string Fault(SoapVersion soap, bool trust2005, string code, string? subcode, string reason)
    {
        string trustNs = trust2005 ? WsNs.Trust2005 : WsNs.Trust13;
        string text = WsTrustTokens.Xml(reason);
        if (soap == SoapVersion.Soap11)
        {
            string faultcode = subcode is null ? "s:" + (code == "Sender" ? "Client" : "Server") : "wst:" + subcode;
            return $"<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"{WsNs.Soap11}\" xmlns:wst=\"{trustNs}\">"
                + $"<s:Body><s:Fault><faultcode>{faultcode}</faultcode><faultstring xml:lang=\"en-US\">{text}</faultstring>"
                + "</s:Fault></s:Body></s:Envelope>";
        }

        string sub = subcode is null ? "" : $"<s:Subcode><s:Value>wst:{subcode}</s:Value></s:Subcode>";
        return $"<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"{WsNs.Soap12}\" xmlns:wst=\"{trustNs}\">"
            + $"<s:Body><s:Fault><s:Code><s:Value>s:{code}</s:Value>{sub}</s:Code>"
            + $"<s:Reason><s:Text xml:lang=\"en-US\">{text}</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>";
    }

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture);

    /// <summary>An element whose children are elements or raw (already escaped) text.</summary>
    private sealed class Node(string open, params object[] children)
    {
        private readonly List<object> _children = [.. children];

        public void Add(object child) => _children.Add(child);

        /// <summary>depth &lt; 0: compact; else indented by two spaces per level (raw text stays inline).</summary>
        public void Render(StringBuilder sb, int depth)
        {
            string name = open.Split(' ')[0];
            string pad = depth < 0 ? "" : new string(' ', depth * 2);
            sb.Append(pad).Append('<').Append(open).Append('>');
            bool elements = _children.All(c => c is Node);
            foreach (object child in _children)
            {
                if (child is Node node)
                {
                    if (depth >= 0)
                    {
                        sb.Append('\n');
                    }

                    node.Render(sb, depth < 0 ? -1 : depth + 1);
                }
                else
                {
                    sb.Append((string)child);
                }
            }

            if (depth >= 0 && elements && _children.Count > 0)
            {
                sb.Append('\n').Append(pad);
            }

            sb.Append("</").Append(name).Append('>');
        }
    }

    /// <summary>
    /// A SOAP 1.2 WS-Trust 1.3 Issue RequestSecurityToken as an STS client sends it:
    /// the source token as a BinarySecurityToken (base64 of its UTF-8) in wsse:Security.
    /// </summary>
    public static string RequestSecurityToken(string sourceToken, string to, string appliesTo,
        string tokenType = WsNs.Saml2TokenType, string valueType = "urn:pingidentity.com:oauth2:grant_type:validate_bearer",
        DateTimeOffset? created = null)
    {
        DateTimeOffset c = created ?? DateTimeOffset.UtcNow;
        return $"<s:Envelope xmlns:s=\"{WsNs.Soap12}\" xmlns:a=\"{WsNs.Addressing}\" xmlns:u=\"{WsNs.Wsu}\">"
            + "<s:Header>"
            + $"<a:Action s:mustUnderstand=\"1\">{WsNs.Trust13}/RST/Issue</a:Action>"
            + "<a:MessageID>urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3301</a:MessageID>"
            + $"<a:To s:mustUnderstand=\"1\">{WsTrustTokens.Xml(to)}</a:To>"
            + $"<wsse:Security s:mustUnderstand=\"1\" xmlns:wsse=\"{WsNs.Wsse}\">"
            + $"<u:Timestamp u:Id=\"_0\"><u:Created>{Time(c)}</u:Created><u:Expires>{Time(c.AddMinutes(5))}</u:Expires></u:Timestamp>"
            + $"<wsse:BinarySecurityToken ValueType=\"{WsTrustTokens.Xml(valueType)}\" EncodingType=\"{WsNs.Base64Binary}\">"
            + Convert.ToBase64String(Encoding.UTF8.GetBytes(sourceToken))
            + "</wsse:BinarySecurityToken></wsse:Security></s:Header>"
            + $"<s:Body><trust:RequestSecurityToken xmlns:trust=\"{WsNs.Trust13}\">"
            + $"<wsp:AppliesTo xmlns:wsp=\"{WsNs.Policy}\"><a:EndpointReference><a:Address>{WsTrustTokens.Xml(appliesTo)}</a:Address></a:EndpointReference></wsp:AppliesTo>"
            + $"<trust:KeyType>{WsNs.Trust13}/Bearer</trust:KeyType>"
            + $"<trust:RequestType>{WsNs.Trust13}/Issue</trust:RequestType>"
            + $"<trust:TokenType>{WsTrustTokens.Xml(tokenType)}</trust:TokenType>"
            + "</trust:RequestSecurityToken></s:Body></s:Envelope>";
    }
}
