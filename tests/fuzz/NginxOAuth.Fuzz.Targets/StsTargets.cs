using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Xml;
using NginxOAuth.Core;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;
using NginxOAuth.Core.OAuth2;
using NginxOAuth.Core.Sts;

namespace NginxOAuth.Fuzz;

/// <summary>The STS exchange: what nox_sts_response, nox_sts_request and nox_sts_create read.</summary>
internal static class StsTargets
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>An OAuth JSON answer of an otx (ropc and cc read the same way) STS, under several statuses.</summary>
    public static void JsonAnswer(ReadOnlySpan<byte> input)
    {
        StsFixtures f = StsFixtures.Instance;
        foreach (int status in (ReadOnlySpan<int>)[200, 400, 403, 500])
        {
            Answer(f.Otx, status, input, soap: false);
        }
    }

    /// <summary>A SOAP answer (RSTR or Fault) of a WS-Trust STS, under several statuses.</summary>
    public static void SoapAnswer(ReadOnlySpan<byte> input)
    {
        StsFixtures f = StsFixtures.Instance;
        foreach (int status in (ReadOnlySpan<int>)[200, 401, 500])
        {
            Answer(f.WsTrust, status, input, soap: true);
        }
    }

    /// <summary>The claims setting, written over a source payload.</summary>
    public static void Projection(ReadOnlySpan<byte> input)
    {
        string text;
        try
        {
            text = StrictUtf8.GetString(input);
        }
        catch (ArgumentException)
        {
            return; // nox_sts_create refuses a setting that is not UTF-8 before parsing it
        }
        ClaimProjection? projection = ClaimProjection.Parse(text);
        if (projection is null)
        {
            return;
        }

        StsFixtures f = StsFixtures.Instance;
        var buffer = new ArrayBufferWriter<byte>();
        HashSet<string> written;
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            written = projection.Write(f.Source.RootElement, writer, f.Skip);
            writer.WriteEndObject();
        }
        Contract.That(JsonGuard.Check(buffer.WrittenSpan) == JsonShape.Object,
            "the projection wrote something other than one object without repeated names");
        foreach (string name in written)
        {
            Contract.That(projection.Writes(name) && !f.Skip.Contains(name), "wrote a member it does not project");
        }
    }

    /// <summary>A source token as nox_sts_request gets it, for every type that reads it.</summary>
    public static void Request(ReadOnlySpan<byte> input)
    {
        StsFixtures f = StsFixtures.Instance;
        foreach ((string name, StsSettings settings) in f.RequestSettings)
        {
            var output = new byte[input.Length * 4 + 8192];
            StsRequestResult r = StsExchange.CreateRequest(settings, input, ArrayStsValues.None, JwtFixtures.Now,
                output);
            Contract.Defined(r.Error);
            if (r.Error == StsError.BufferTooSmall)
            {
                Contract.That(r.Needed > output.Length, "buffer too small, but it fits");
                output = new byte[r.Needed];
                r = StsExchange.CreateRequest(settings, input, ArrayStsValues.None, JwtFixtures.Now, output);
                Contract.That(r.Error != StsError.BufferTooSmall, "the size asked for was not enough");
            }
            if (r.Error != StsError.None)
            {
                continue;
            }
            Contract.That(r.BodyLength > 0 && r.AuthorizationLength >= 0 && r.ActionLength >= 0
                && r.BodyLength + r.AuthorizationLength + r.ActionLength <= output.Length, "request beyond the buffer");
            ReadOnlySpan<byte> body = output.AsSpan(0, r.BodyLength);
            switch (name)
            {
                case "jwt":
                case "jwt-claims":
                    // the minted token's signature verifies with the key it was signed with, and its
                    // payload is one object without repeated names (time claims are the source's: a
                    // source that was not verified may carry any nbf)
                    TokenError signature = JwtVerifier.VerifySignature(body, [f.MintKeys]);
                    Contract.That(signature == TokenError.None, "minted token does not verify: " + signature);
                    int dot1 = body.IndexOf((byte)'.'), dot2 = body.LastIndexOf((byte)'.');
                    byte[] payload = System.Buffers.Text.Base64Url.DecodeFromUtf8(body[(dot1 + 1)..dot2]);
                    Contract.That(JsonGuard.Check(payload) == JsonShape.Object, "minted payload is not one object"
                        + " without repeated names");
                    Contract.That(r.Ttl >= 0, "negative ttl");
                    break;
                case "wstrust-xml":
                case "wstrust-binary":
                    WellFormed(body, "the RST envelope");
                    break;
                case "otx":
                    Contract.That(FormValue(body, "subject_token"u8).AsSpan().SequenceEqual(input),
                        "subject_token does not carry the source as it was");
                    break;
                case "ropc":
                    Contract.That(FormValue(body, "password"u8).AsSpan().SequenceEqual(input),
                        "password does not carry the source as it was");
                    break;
            }
        }
    }

    private static void Answer(StsSettings settings, int status, ReadOnlySpan<byte> input, bool soap)
    {
        foreach (int capacity in (ReadOnlySpan<int>)[input.Length + 256, 8])
        {
            var output = new byte[capacity];
            StsResponseResult r = StsExchange.ReadResponse(settings, status, input, JwtFixtures.Now, output);
            Contract.Defined(r.Error);
            switch (r.Error)
            {
                case StsError.None:
                    int types = Math.Max(r.IssuedTypeLength, 0) + Math.Max(r.TokenTypeLength, 0);
                    Contract.That(r.TokenLength > 0 && r.IssuedTypeLength >= -1 && r.TokenTypeLength >= -1
                        && r.TokenLength + types <= capacity, "answer lengths beyond the output buffer");
                    Contract.That(TokenChars.Valid(output.AsSpan(0, r.TokenLength)),
                        "a target token with characters a header cannot carry");
                    Contract.That(r.Ttl >= 0 && r.Ttl <= settings.Configured.Expiry, "ttl outside [0, expiry]");
                    if (soap && output[0] == (byte)'<')
                    {
                        WellFormed(output.AsSpan(0, r.TokenLength), "the returned assertion");
                    }
                    break;
                case StsError.Rejected:
                case StsError.Forbidden:
                    Contract.That(r.TokenLength >= 0 && r.TokenLength <= Math.Min(StsExchange.ErrorMax, capacity),
                        "error code beyond its cap");
                    foreach (byte b in output.AsSpan(0, r.TokenLength))
                    {
                        Contract.That(b is >= 0x20 and <= 0x7E, "error code with a byte a log line cannot carry");
                    }
                    break;
                case StsError.BufferTooSmall:
                    Contract.That(r.TokenLength > capacity, "buffer too small, but it fits");
                    break;
            }
        }
    }

    /// <summary>XML that stands alone: well-formed, no DTD.</summary>
    private static void WellFormed(ReadOnlySpan<byte> xml, string what)
    {
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null };
        try
        {
            using XmlReader reader = XmlReader.Create(new MemoryStream(xml.ToArray()), settings);
            while (reader.Read())
            {
            }
        }
        catch (XmlException e)
        {
            throw new ContractViolation(what + " is not well-formed XML: " + e.Message);
        }
    }

    /// <summary>The one value of <paramref name="name"/> in an application/x-www-form-urlencoded body, decoded.</summary>
    private static byte[] FormValue(ReadOnlySpan<byte> body, ReadOnlySpan<byte> name)
    {
        byte[]? found = null;
        foreach (Range range in body.Split((byte)'&'))
        {
            ReadOnlySpan<byte> pair = body[range];
            int eq = pair.IndexOf((byte)'=');
            ReadOnlySpan<byte> key = eq < 0 ? pair : pair[..eq];
            if (!Decode(key).AsSpan().SequenceEqual(name))
            {
                continue;
            }
            Contract.That(found is null, "the form repeats " + Encoding.ASCII.GetString(name));
            found = eq < 0 ? [] : Decode(pair[(eq + 1)..]);
        }
        return found ?? throw new ContractViolation("the form lacks " + Encoding.ASCII.GetString(name));
    }

    private static byte[] Decode(ReadOnlySpan<byte> encoded)
    {
        var decoded = new List<byte>(encoded.Length);
        for (int i = 0; i < encoded.Length; i++)
        {
            byte b = encoded[i];
            if (b == (byte)'+')
            {
                decoded.Add((byte)' ');
            }
            else if (b == (byte)'%')
            {
                Contract.That(i + 2 < encoded.Length, "a truncated percent escape");
                decoded.Add(Convert.FromHexString(Encoding.ASCII.GetString(encoded.Slice(i + 1, 2)))[0]);
                i += 2;
            }
            else
            {
                Contract.That(char.IsAsciiLetterOrDigit((char)b) || b is (byte)'.' or (byte)'_' or (byte)'~'
                    or (byte)'-' or (byte)'*', "a form byte left unencoded: " + b);
                decoded.Add(b);
            }
        }
        return decoded.ToArray();
    }
}

/// <summary>STS settings built once per process, as each worker builds them once per location.</summary>
internal sealed class StsFixtures
{
    public const string Endpoint = "https://sts.example/token";

    /// <summary>An HS256 key for minting (RFC 7515 A.1's), so minted tokens verify cheaply.</summary>
    private const string MintJwk = Vectors.Rfc7515A1Jwk;

    private static StsFixtures? _instance;

    public static StsFixtures Instance => _instance ??= new StsFixtures();

    private StsFixtures()
    {
        Otx = Create("type", "otx", "endpoint", Endpoint, "expiry", "300");
        WsTrust = Create("type", "wstrust", "endpoint", Endpoint, "value_type", "urn:vt", "expiry", "300");
        RequestSettings =
        [
            ("wstrust-binary", WsTrust),
            ("wstrust-xml", Create("type", "wstrust", "endpoint", Endpoint, "applies_to", "urn:app")),
            ("otx", Create("type", "otx", "endpoint", Endpoint, "audience", "api", "auth", "client_secret_basic",
                "client_id", "gw", "client_secret", "s3cret")),
            ("ropc", Create("type", "ropc", "endpoint", Endpoint, "username", "svc user")),
            ("jwt", Create("type", "jwt", "endpoint", MintJwk, "iss", "https://gw", "aud", "api", "kid", "k1")),
            ("jwt-claims", Create("type", "jwt", "endpoint", MintJwk, "alg", "HS256",
                "claims", "{sub, email, roles: .realm_access.roles, \"full name\": .a[\"b c\"], first: .list[0]}")),
        ];

        KeySetResult keys = KeySetLoader.Load(Encoding.UTF8.GetBytes("{\"keys\":[" + MintJwk + "]}"), KeySetFormat.Jwks);
        MintKeys = keys.KeySet ?? throw new InvalidOperationException("fixture key refused");

        Source = JsonDocument.Parse(
            "{\"sub\":\"alice\",\"email\":\"a@example.com\",\"realm_access\":{\"roles\":[\"admin\",\"dev\"]},"
            + "\"a\":{\"b c\":1,\"x.y\":[true]},\"iss\":\"https://src\",\"iat\":1,\"jti\":\"old\",\"exp\":2,"
            + "\"list\":[\"first\",{\"k\":null}],\"\u00e9\":\"\\u00e9\",\"n\":null}");
    }

    public StsSettings Otx { get; }

    public StsSettings WsTrust { get; }

    public (string Name, StsSettings Settings)[] RequestSettings { get; }

    public KeySet MintKeys { get; }

    public JsonDocument Source { get; }

    /// <summary>What minting never copies from the source (it writes them itself).</summary>
    public HashSet<string> Skip { get; } = new(StringComparer.Ordinal) { "iat", "jti", "exp" };

    private static StsSettings Create(params string[] nameValues)
    {
        var pairs = new List<KeyValuePair<byte[], byte[]>>();
        for (int i = 0; i < nameValues.Length; i += 2)
        {
            pairs.Add(new(Encoding.UTF8.GetBytes(nameValues[i]), Encoding.UTF8.GetBytes(nameValues[i + 1])));
        }
        StsCreateResult result = StsSettings.Create(pairs);
        return result.Settings ?? throw new InvalidOperationException(
            $"fixture settings refused: {result.Error} at pair {result.Detail}");
    }
}
