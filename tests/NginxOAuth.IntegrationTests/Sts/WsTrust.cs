using System;
using System.Collections.Generic;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace NginxOAuth.IntegrationTests.Sts;

/// <summary>The namespaces of SOAP and WS-Trust messages.</summary>
public static class WsNs
{
    public const string Soap12 = "http://www.w3.org/2003/05/soap-envelope";
    public const string Soap11 = "http://schemas.xmlsoap.org/soap/envelope/";
    public const string Addressing = "http://www.w3.org/2005/08/addressing";
    public const string Wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    public const string Wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    public const string Trust13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
    public const string Trust2005 = "http://schemas.xmlsoap.org/ws/2005/02/trust";
    public const string Policy = "http://schemas.xmlsoap.org/ws/2004/09/policy";
    public const string Saml2 = "urn:oasis:names:tc:SAML:2.0:assertion";
    public const string Base64Binary = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

    /// <summary>The token type of the SAML 2.0 assertions the fake STS issues.</summary>
    public const string Saml2TokenType = "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0";

    /// <summary>The ValueType of the binary tokens the fake STS issues.</summary>
    public const string FakeBinaryValueType = "urn:nginx-oauth:fake-sts:token";
}

public enum SoapVersion
{
    Soap12,
    Soap11,
}

/// <summary>The shape of the issued token inside RequestedSecurityToken.</summary>
public enum WsTrustTokenShape
{
    /// <summary>A single-line SAML 2.0 saml:Assertion element (its NameID is the derived token).</summary>
    Saml2Assertion,

    /// <summary>A wsse:BinarySecurityToken whose base64 content decodes to the derived token.</summary>
    BinarySecurityToken,
}

/// <summary>What comes before the token element inside RequestedSecurityToken (so the token is not the first node).</summary>
public enum WsTrustTokenPrefix
{
    None,

    /// <summary>Whitespace, an XML comment, whitespace.</summary>
    Comment,

    /// <summary>Whitespace, another (empty) element, whitespace.</summary>
    Element,
}

/// <summary>A SOAP fault instead of an RSTR (HTTP 500).</summary>
public enum WsTrustFault
{
    None,

    /// <summary>wst:InvalidRequest (faultcode in SOAP 1.1, Code Sender with this Subcode in SOAP 1.2).</summary>
    InvalidRequest,

    /// <summary>wst:FailedAuthentication.</summary>
    FailedAuthentication,
}

/// <summary>
/// How <see cref="FakeWsTrustSts"/> answers; the defaults are a SOAP 1.2,
/// WS-Trust 1.3 RequestSecurityTokenResponseCollection with a SAML 2.0
/// assertion after a comment, a Lifetime of an hour, compact (one line).
/// </summary>
public sealed record WsTrustMode
{
    public SoapVersion Soap { get; init; } = SoapVersion.Soap12;

    /// <summary>WS-Trust 2005/02 instead of 1.3 for the RSTR (and fault subcodes).</summary>
    public bool Trust2005 { get; init; }

    /// <summary>Wraps the RSTR in RequestSecurityTokenResponseCollection.</summary>
    public bool Collection { get; init; } = true;

    public WsTrustTokenShape Token { get; init; } = WsTrustTokenShape.Saml2Assertion;

    public WsTrustTokenPrefix Prefix { get; init; } = WsTrustTokenPrefix.Comment;

    /// <summary>Line length of the base64 content of a binary token (0: one line; 64 or 76 typical).</summary>
    public int WrapColumns { get; init; }

    /// <summary>CRLF instead of LF between the wrapped base64 lines.</summary>
    public bool CrLf { get; init; }

    /// <summary>The decoded binary token is padded ("." and deterministic filler) to at least this many bytes.</summary>
    public int BinaryMinBytes { get; init; }

    /// <summary>Pretty-printed (indented) envelope; the assertion itself stays on one line.</summary>
    public bool Indented { get; init; }

    public bool IncludeLifetime { get; init; } = true;

    /// <summary>Lifetime Created; default now.</summary>
    public DateTimeOffset? Created { get; init; }

    /// <summary>Lifetime Expires; default Created + <see cref="LifetimeSeconds"/>.</summary>
    public DateTimeOffset? Expires { get; init; }

    public int LifetimeSeconds { get; init; } = 3600;

    public WsTrustFault Fault { get; init; }

    /// <summary>A DOCTYPE with an external entity (file:///etc/passwd) used as the token's content (XXE attempt).</summary>
    public bool ExternalEntity { get; init; }

    /// <summary>An RSTR without RequestedSecurityToken.</summary>
    public bool NoToken { get; init; }

    /// <summary>Waits this long before answering.</summary>
    public TimeSpan Delay { get; init; }

    /// <summary>HTTP status of a non-fault answer.</summary>
    public int Status { get; init; } = 200;

    /// <summary>When set, the whole answer body verbatim (Content-Type from <see cref="Soap"/>).</summary>
    public string? RawBody { get; init; }

    public static WsTrustMode Default { get; } = new();

    public static WsTrustMode Binary(int wrapColumns = 0, bool crlf = false) =>
        new() { Token = WsTrustTokenShape.BinarySecurityToken, WrapColumns = wrapColumns, CrLf = crlf };

    public static WsTrustMode SoapFault(SoapVersion soap, WsTrustFault fault = WsTrustFault.FailedAuthentication) =>
        new() { Soap = soap, Fault = fault };
}

/// <summary>What the fake STS issues for a source token: deterministic, header-safe.</summary>
public static class WsTrustTokens
{
    /// <summary>
    /// "wst." + the source token, every byte outside printable ASCII (0x21-0x7E)
    /// and '%' written as %XX of its UTF-8: two different sources never give the same token.
    /// </summary>
    public static string Derive(string source)
    {
        var sb = new StringBuilder("wst.");
        foreach (byte b in Encoding.UTF8.GetBytes(source))
        {
            if (b is >= 0x21 and <= 0x7E && b != (byte)'%')
            {
                sb.Append((char)b);
            }
            else
            {
                sb.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return sb.ToString();
    }

    /// <summary>The decoded value of the binary token for <paramref name="source"/> under <paramref name="mode"/>.</summary>
    public static string BinaryValue(string source, WsTrustMode mode)
    {
        string value = Derive(source);
        if (value.Length >= mode.BinaryMinBytes)
        {
            return value;
        }

        var sb = new StringBuilder(value).Append('.');
        for (int i = 0; sb.Length < mode.BinaryMinBytes; i++)
        {
            sb.Append((char)('a' + (i % 26)));
        }

        return sb.ToString();
    }

    /// <summary>The assertion's ID: "_" + 32 hex digits of SHA-256(source).</summary>
    public static string AssertionId(string source) =>
        "_" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(source)))[..32];

    /// <summary>The single-line SAML 2.0 assertion issued for <paramref name="source"/> (exactly as sent).</summary>
    public static string SamlAssertion(string source, bool externalEntity = false) =>
        $"<saml:Assertion xmlns:saml=\"{WsNs.Saml2}\" ID=\"{AssertionId(source)}\" IssueInstant=\"2024-01-01T00:00:00Z\" Version=\"2.0\">"
        + "<saml:Issuer>urn:nginx-oauth:fake-sts</saml:Issuer>"
        + "<saml:Subject><saml:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\">"
        + (externalEntity ? "&xxe;" : Xml(Derive(source)))
        + "</saml:NameID><saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"/></saml:Subject>"
        + "<saml:AttributeStatement><saml:Attribute Name=\"source-length\"><saml:AttributeValue>"
        + source.Length.ToString(CultureInfo.InvariantCulture)
        + "</saml:AttributeValue></saml:Attribute></saml:AttributeStatement></saml:Assertion>";

    /// <summary>The base64 of <paramref name="value"/>, wrapped at <paramref name="columns"/> (0: no wrap).</summary>
    public static string WrappedBase64(string value, int columns, bool crlf)
    {
        string b64 = Convert.ToBase64String(Encoding.UTF8.GetBytes(value));
        if (columns <= 0)
        {
            return b64;
        }

        var lines = new List<string>();
        for (int i = 0; i < b64.Length; i += columns)
        {
            lines.Add(b64.Substring(i, Math.Min(columns, b64.Length - i)));
        }

        return string.Join(crlf ? "\r\n" : "\n", lines);
    }

    internal static string Xml(string s) => System.Security.SecurityElement.Escape(s) ?? "";
}
