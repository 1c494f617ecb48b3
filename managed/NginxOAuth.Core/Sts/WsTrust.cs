using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Text;
using System.Xml;

namespace NginxOAuth.Core.Sts;

/// <summary>
/// WS-Trust 1.3 over SOAP 1.2: the RequestSecurityToken envelope, and the
/// reading of an RSTR (SOAP 1.1/1.2, WS-Trust 1.3 and 2005/02) or a Fault.
/// Parsing is forward-only (<see cref="XmlReader"/>): no DTD, no resolver,
/// capped size.
/// </summary>
public static class WsTrust
{
    public const string Soap12 = "http://www.w3.org/2003/05/soap-envelope";
    public const string Soap11 = "http://schemas.xmlsoap.org/soap/envelope/";
    public const string Trust13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
    public const string Trust2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust";
    public const string Wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    public const string Wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    public const string Wsa = "http://www.w3.org/2005/08/addressing";
    public const string Wsp = "http://schemas.xmlsoap.org/ws/2004/09/policy";
    public const string Saml11 = "urn:oasis:names:tc:SAML:1.0:assertion";
    public const string Saml20 = "urn:oasis:names:tc:SAML:2.0:assertion";

    public const string Action = Trust13 + "/RST/Issue";
    public const string RequestType = Trust13 + "/Issue";
    public const string KeyType = Trust13 + "/SymmetricKey";
    public const string Base64Binary =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

    /// <summary>The default wst:TokenType: the WSS SAML token profile's SAML 2.0 URI (as liboauth2-sts sends).</summary>
    public const string DefaultTokenType = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0";

    /// <summary>The request's wsu:Timestamp expires this long after Created.</summary>
    public const long TimestampLifetime = 300;

    private static readonly XmlWriterSettings WriterSettings = new()
    {
        Encoding = new UTF8Encoding(false),
        OmitXmlDeclaration = true,
        Indent = false,
        CheckCharacters = true,
        NewLineHandling = NewLineHandling.Entitize,
    };

    /// <summary>
    /// The RST envelope for <paramref name="source"/>. Null with
    /// <see cref="StsError.SourceInvalid"/> when the source is not usable
    /// (not base64-wrapped and not one well-formed element), or
    /// <see cref="StsError.SettingInvalid"/> when a setting holds characters
    /// XML cannot carry.
    /// </summary>
    public static byte[]? BuildRequest(StsConfig c, ReadOnlySpan<byte> source, long now, out StsError error)
    {
        error = StsError.None;
        string? rawToken = null;
        if (source.IsEmpty)
        {
            error = StsError.SourceInvalid;
            return null;
        }
        if (string.IsNullOrEmpty(c.ValueType) && (rawToken = SingleElement(source)) is null)
        {
            error = StsError.SourceInvalid;
            return null;
        }

        var stream = new MemoryStream(1024 + source.Length * 2);
        try
        {
            using (XmlWriter w = XmlWriter.Create(stream, WriterSettings))
            {
                w.WriteStartElement("s", "Envelope", Soap12);
                w.WriteAttributeString("xmlns", "wsa", null, Wsa);
                w.WriteAttributeString("xmlns", "wsse", null, Wsse);
                w.WriteAttributeString("xmlns", "wsu", null, Wsu);
                w.WriteAttributeString("xmlns", "wst", null, Trust13);

                w.WriteStartElement("s", "Header", Soap12);
                w.WriteElementString("wsa", "Action", Wsa, Action);
                w.WriteElementString("wsa", "MessageID", Wsa, "urn:uuid:" + Guid.NewGuid().ToString("D"));
                w.WriteElementString("wsa", "To", Wsa, string.IsNullOrEmpty(c.WsaTo) ? c.Endpoint ?? "" : c.WsaTo);
                w.WriteStartElement("wsse", "Security", Wsse);
                w.WriteStartElement("wsu", "Timestamp", Wsu);
                w.WriteAttributeString("wsu", "Id", Wsu, "_0");
                w.WriteElementString("wsu", "Created", Wsu, IsoTime(now));
                w.WriteElementString("wsu", "Expires", Wsu, IsoTime(now + TimestampLifetime));
                w.WriteEndElement();
                if (rawToken is not null)
                {
                    w.WriteRaw(rawToken); // checked: one well-formed element, namespaces declared
                }
                else
                {
                    w.WriteStartElement("wsse", "BinarySecurityToken", Wsse);
                    w.WriteAttributeString("ValueType", c.ValueType);
                    w.WriteAttributeString("EncodingType", Base64Binary);
                    w.WriteString(Convert.ToBase64String(source));
                    w.WriteEndElement();
                }
                w.WriteEndElement(); // Security
                w.WriteEndElement(); // Header

                w.WriteStartElement("s", "Body", Soap12);
                w.WriteStartElement("wst", "RequestSecurityToken", Trust13);
                w.WriteElementString("wst", "TokenType", Trust13,
                    string.IsNullOrEmpty(c.TokenType) ? DefaultTokenType : c.TokenType);
                w.WriteElementString("wst", "RequestType", Trust13, RequestType);
                if (!string.IsNullOrEmpty(c.AppliesTo))
                {
                    w.WriteStartElement("wsp", "AppliesTo", Wsp);
                    w.WriteStartElement("wsa", "EndpointReference", Wsa);
                    w.WriteElementString("wsa", "Address", Wsa, c.AppliesTo);
                    w.WriteEndElement();
                    w.WriteEndElement();
                }
                w.WriteElementString("wst", "KeyType", Trust13, KeyType);
                w.WriteEndElement(); // RequestSecurityToken
                w.WriteEndElement(); // Body
                w.WriteEndElement(); // Envelope
            }
        }
        catch (ArgumentException)
        {
            error = StsError.SettingInvalid; // a control character in a setting
            return null;
        }
        return stream.ToArray();
    }

    /// <summary>ISO 8601 UTC, seconds precision, "Z".</summary>
    public static string IsoTime(long unixSeconds) =>
        DateTimeOffset.FromUnixTimeSeconds(Math.Clamp(unixSeconds, 0, 253402300799))
            .UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>The source as text when it is exactly one well-formed element (no declaration, DTD, PI or comment around it).</summary>
    internal static string? SingleElement(ReadOnlySpan<byte> source)
    {
        if (!Utf8.TryDecode(source, out string? text))
        {
            return null;
        }
        text = text!.Trim(' ', '\t', '\r', '\n');
        if (text.Length < 3 || text[0] != '<' || text[1] is '?' or '!')
        {
            return null;
        }
        try
        {
            using XmlReader r = XmlReader.Create(new StringReader(text), ReaderSettings(text.Length));
            bool rootDone = false;
            while (r.Read())
            {
                if (rootDone)
                {
                    return null; // anything after the root element
                }
                if (r.Depth == 0 && (r.NodeType == XmlNodeType.EndElement
                    || (r.NodeType == XmlNodeType.Element && r.IsEmptyElement)))
                {
                    rootDone = true;
                }
            }
            return rootDone ? text : null;
        }
        catch (XmlException)
        {
            return null;
        }
    }

    private static XmlReaderSettings ReaderSettings(int maxChars) => new()
    {
        DtdProcessing = DtdProcessing.Prohibit,
        XmlResolver = null,
        MaxCharactersInDocument = Math.Max(maxChars, 1),
        MaxCharactersFromEntities = 1024,
        IgnoreComments = false,
        IgnoreProcessingInstructions = false,
        ConformanceLevel = ConformanceLevel.Document,
        CloseInput = true,
    };

    /// <summary>What an RSTR or Fault held.</summary>
    internal readonly struct Answer
    {
        public Answer(StsError error, byte[]? token = null, string? faultCode = null, DateTimeOffset? expires = null,
            bool lifetimeInvalid = false)
        {
            Error = error;
            Token = token;
            FaultCode = faultCode;
            Expires = expires;
            LifetimeInvalid = lifetimeInvalid;
        }

        public StsError Error { get; }

        public byte[]? Token { get; }

        /// <summary>Set when the body was a SOAP Fault (Error is then Rejected).</summary>
        public string? FaultCode { get; }

        public DateTimeOffset? Expires { get; }

        public bool LifetimeInvalid { get; }
    }

    /// <summary>
    /// Reads a SOAP envelope (valid UTF-8, already size-checked). Errors:
    /// XmlDtd, XmlInvalid (not XML, not an envelope, no RSTR),
    /// ResponseNoToken; a Fault is Rejected with its code.
    /// </summary>
    internal static Answer Read(ReadOnlySpan<byte> body)
    {
        if (body.StartsWith("\xEF\xBB\xBF"u8))
        {
            body = body[3..];
        }
        string text = Encoding.UTF8.GetString(body);
        try
        {
            using XmlReader r = XmlReader.Create(new StringReader(text), ReaderSettings(text.Length));
            Answer answer = ReadEnvelope(r, text);
            while (r.Read())
            {
                // the rest must be well-formed too
            }
            return answer;
        }
        catch (XmlException)
        {
            return new Answer(body.IndexOf("<!DOCTYPE"u8) >= 0 || body.IndexOf("<!ENTITY"u8) >= 0
                ? StsError.XmlDtd : StsError.XmlInvalid);
        }
    }

    private static Answer ReadEnvelope(XmlReader r, string text)
    {
        if (r.MoveToContent() != XmlNodeType.Element || r.LocalName != "Envelope"
            || r.NamespaceURI is not (Soap11 or Soap12) || r.IsEmptyElement)
        {
            return new Answer(StsError.XmlInvalid);
        }
        string soap = r.NamespaceURI;

        while (Child(r, 1))
        {
            if (r.LocalName != "Body" || r.NamespaceURI != soap)
            {
                continue;
            }
            if (r.IsEmptyElement)
            {
                break;
            }
            while (Child(r, 2))
            {
                if (r.LocalName == "Fault" && r.NamespaceURI == soap)
                {
                    return new Answer(StsError.Rejected, faultCode: ReadFault(r, soap == Soap12) ?? "");
                }
                if (IsTrust(r, "RequestSecurityTokenResponseCollection") && !r.IsEmptyElement)
                {
                    while (Child(r, 3))
                    {
                        if (IsTrust(r, "RequestSecurityTokenResponse"))
                        {
                            return ReadRstr(r, text);
                        }
                    }
                    break;
                }
                if (IsTrust(r, "RequestSecurityTokenResponse"))
                {
                    return ReadRstr(r, text);
                }
            }
            break;
        }
        return new Answer(StsError.XmlInvalid);
    }

    private static bool IsTrust(XmlReader r, string name) =>
        r.LocalName == name && r.NamespaceURI is Trust13 or Trust2005;

    /// <summary>
    /// Moves to the next element child at <paramref name="depth"/>; false at
    /// the end of the parent (the caller checked the parent is not empty).
    /// </summary>
    private static bool Child(XmlReader r, int depth)
    {
        while (r.Read())
        {
            if (r.NodeType == XmlNodeType.Element && r.Depth == depth)
            {
                return true;
            }
            if (r.NodeType == XmlNodeType.EndElement && r.Depth == depth - 1)
            {
                return false;
            }
        }
        return false;
    }

    /// <summary>The text content of the current element; leaves the reader on its end tag.</summary>
    private static string ReadText(XmlReader r)
    {
        if (r.IsEmptyElement)
        {
            return "";
        }
        int depth = r.Depth;
        var sb = new StringBuilder();
        while (r.Read() && !(r.NodeType == XmlNodeType.EndElement && r.Depth == depth))
        {
            if (r.Depth == depth + 1 && r.NodeType is XmlNodeType.Text or XmlNodeType.CDATA
                or XmlNodeType.Whitespace or XmlNodeType.SignificantWhitespace)
            {
                sb.Append(r.Value);
            }
        }
        return sb.ToString();
    }

    /// <summary>SOAP 1.1 faultcode; SOAP 1.2 Code/Value, the innermost Subcode/Value when present.</summary>
    private static string? ReadFault(XmlReader r, bool soap12)
    {
        if (r.IsEmptyElement)
        {
            return null;
        }
        int depth = r.Depth;
        string? code = null;
        while (Child(r, depth + 1))
        {
            if (!soap12 && r.LocalName == "faultcode" && r.NamespaceURI.Length == 0)
            {
                code ??= ReadText(r).Trim();
            }
            else if (soap12 && r.LocalName == "Code" && r.NamespaceURI == Soap12)
            {
                code ??= ReadCode(r);
            }
        }
        return code;
    }

    private static string? ReadCode(XmlReader r)
    {
        if (r.IsEmptyElement)
        {
            return null;
        }
        int depth = r.Depth;
        string? value = null, sub = null;
        while (Child(r, depth + 1))
        {
            if (r.NamespaceURI != Soap12)
            {
                continue;
            }
            if (r.LocalName == "Value")
            {
                value ??= ReadText(r).Trim();
            }
            else if (r.LocalName == "Subcode")
            {
                sub ??= ReadCode(r);
            }
        }
        return string.IsNullOrEmpty(sub) ? value : sub;
    }

    private static Answer ReadRstr(XmlReader r, string text)
    {
        if (r.IsEmptyElement)
        {
            return new Answer(StsError.ResponseNoToken);
        }
        int depth = r.Depth;
        byte[]? token = null;
        bool sawToken = false, lifetimeInvalid = false;
        DateTimeOffset? expires = null;
        while (Child(r, depth + 1))
        {
            if (IsTrust(r, "RequestedSecurityToken") && !sawToken)
            {
                sawToken = true;
                if (r.IsEmptyElement)
                {
                    continue;
                }
                while (Child(r, depth + 2))
                {
                    if (token is null && r.LocalName == "Assertion" && r.NamespaceURI is Saml11 or Saml20)
                    {
                        token = OuterXml(r, text);
                    }
                    else if (token is null && r.LocalName == "BinarySecurityToken" && r.NamespaceURI == Wsse)
                    {
                        token = DecodeBase64(ReadText(r)) ?? Array.Empty<byte>();
                    }
                }
            }
            else if (IsTrust(r, "Lifetime") && !r.IsEmptyElement)
            {
                while (Child(r, depth + 2))
                {
                    if (r.LocalName == "Expires" && r.NamespaceURI == Wsu)
                    {
                        if (TryParseTime(ReadText(r).Trim(), out DateTimeOffset e))
                        {
                            expires = expires is { } prior && prior < e ? prior : e;
                        }
                        else
                        {
                            lifetimeInvalid = true;
                        }
                    }
                }
            }
        }
        return token is { Length: > 0 }
            ? new Answer(StsError.None, token, expires: expires, lifetimeInvalid: lifetimeInvalid)
            : new Answer(StsError.ResponseNoToken);
    }

    private static bool TryParseTime(string value, out DateTimeOffset time) =>
        DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out time);

    /// <summary>Base64 with whitespace (line breaks) anywhere; null when invalid.</summary>
    private static byte[]? DecodeBase64(string value)
    {
        var compact = new StringBuilder(value.Length);
        foreach (char ch in value)
        {
            if (ch is not (' ' or '\t' or '\r' or '\n'))
            {
                compact.Append(ch);
            }
        }
        var output = new byte[compact.Length * 3 / 4 + 3];
        return Convert.TryFromBase64String(compact.ToString(), output, out int written)
            ? output.AsSpan(0, written).ToArray()
            : null;
    }

    /// <summary>
    /// The current element exactly as received (a signed assertion must
    /// keep its bytes), found through the reader's line information. When
    /// the element uses namespaces declared on its ancestors (a prefix of an
    /// element or attribute inside it, the default namespace, or a
    /// "prefix:" in a value, as in xsi:type="xs:string"), those declarations
    /// are added to its start tag so it stands alone; the envelope's other
    /// declarations are not, so a self-contained assertion comes out byte
    /// for byte. Leaves the reader on the element's end tag. Null for an
    /// empty element.
    /// </summary>
    private static byte[]? OuterXml(XmlReader r, string text)
    {
        if (r.IsEmptyElement || r is not IXmlLineInfo info || !info.HasLineInfo())
        {
            return null;
        }
        int[] lines = LineStarts(text);
        string name = r.Name;
        int depth = r.Depth;
        int start = Offset(lines, info.LineNumber, info.LinePosition) - 1;

        // namespaces in scope that the element does not declare itself
        var declared = new HashSet<string>();
        if (r.MoveToFirstAttribute())
        {
            do
            {
                if (r.Prefix == "xmlns")
                {
                    declared.Add(r.LocalName);
                }
                else if (r.Prefix.Length == 0 && r.LocalName == "xmlns")
                {
                    declared.Add("");
                }
            }
            while (r.MoveToNextAttribute());
            r.MoveToElement();
        }
        var inherited = new List<KeyValuePair<string, string>>();
        foreach (KeyValuePair<string, string> ns in ((IXmlNamespaceResolver)r).GetNamespacesInScope(XmlNamespaceScope.ExcludeXml))
        {
            if (!declared.Contains(ns.Key))
            {
                inherited.Add(ns);
            }
        }

        // which of them the element's subtree uses
        var used = new HashSet<string>(StringComparer.Ordinal);
        var values = new StringBuilder();
        NoteNames(r, used, values);
        while (r.Read() && !(r.NodeType == XmlNodeType.EndElement && r.Depth == depth))
        {
            if (r.NodeType == XmlNodeType.Element)
            {
                NoteNames(r, used, values);
            }
            else if (r.NodeType is XmlNodeType.Text or XmlNodeType.CDATA)
            {
                values.Append(r.Value).Append(' ');
            }
        }
        var missing = new List<KeyValuePair<string, string>>();
        string allValues = values.ToString();
        foreach (KeyValuePair<string, string> ns in inherited)
        {
            if (used.Contains(ns.Key) || (ns.Key.Length > 0 && HasQNamePrefix(allValues, ns.Key)))
            {
                missing.Add(ns);
            }
        }
        int endName = Offset(lines, info.LineNumber, info.LinePosition);
        int close = endName < 0 ? -1 : text.IndexOf('>', endName);
        if (start < 0 || close < 0 || text[start] != '<' || string.CompareOrdinal(text, start + 1, name, 0, name.Length) != 0
            || endName < 2 || text[endName - 2] != '<' || text[endName - 1] != '/'
            || string.CompareOrdinal(text, endName, name, 0, name.Length) != 0)
        {
            return null; // the line information did not match: refuse rather than guess
        }

        string element = text[start..(close + 1)];
        if (missing.Count > 0 && SingleElement(Encoding.UTF8.GetBytes(element)) is null)
        {
            var declarations = new StringBuilder();
            foreach (KeyValuePair<string, string> ns in missing)
            {
                declarations.Append(ns.Key.Length == 0 ? " xmlns" : " xmlns:" + ns.Key).Append("=\"")
                    .Append(ns.Value.Replace("&", "&amp;").Replace("\"", "&quot;").Replace("<", "&lt;")).Append('"');
            }
            element = element.Insert(1 + name.Length, declarations.ToString());
        }
        return Encoding.UTF8.GetBytes(element);
    }

    /// <summary>
    /// Records the prefixes of the current element and its attributes ("" for
    /// an unprefixed element in a namespace) and appends the attribute values.
    /// </summary>
    private static void NoteNames(XmlReader r, HashSet<string> used, StringBuilder values)
    {
        if (r.Prefix.Length > 0 || r.NamespaceURI.Length > 0)
        {
            used.Add(r.Prefix);
        }
        if (r.MoveToFirstAttribute())
        {
            do
            {
                if (r.Prefix == "xmlns" || (r.Prefix.Length == 0 && r.LocalName == "xmlns"))
                {
                    continue;
                }
                if (r.Prefix.Length > 0)
                {
                    used.Add(r.Prefix);
                }
                values.Append(r.Value).Append(' ');
            }
            while (r.MoveToNextAttribute());
            r.MoveToElement();
        }
    }

    /// <summary>True when <paramref name="text"/> holds "prefix:" not preceded by a name character.</summary>
    private static bool HasQNamePrefix(string text, string prefix)
    {
        string needle = prefix + ":";
        for (int at = text.IndexOf(needle, StringComparison.Ordinal); at >= 0;
            at = text.IndexOf(needle, at + 1, StringComparison.Ordinal))
        {
            if (at == 0 || !XmlConvert.IsNCNameChar(text[at - 1]))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Where each line starts, with XML's line breaks (LF, CRLF, CR).</summary>
    private static int[] LineStarts(string text)
    {
        var starts = new List<int> { 0 };
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\n' || (text[i] == '\r' && (i + 1 == text.Length || text[i + 1] != '\n')))
            {
                starts.Add(i + 1);
            }
        }
        return starts.ToArray();
    }

    private static int Offset(int[] lines, int line, int position) =>
        line >= 1 && line <= lines.Length && position >= 1 ? lines[line - 1] + position - 1 : -1;
}
