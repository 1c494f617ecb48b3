using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.OAuth2;

namespace NginxOAuth.Core.Sts;

/// <summary>
/// The STS exchange: building the request for a source token
/// (nox_sts_request), reading the answer (nox_sts_response) and the cache
/// key (nox_sts_key). Pure functions of their inputs; time is a parameter.
/// </summary>
public static class StsExchange
{
    public const int MaxResponse = 1024 * 1024;
    public const int ErrorMax = TokenErrors.ErrorMax;

    public const string PasswordGrant = "password";
    public const string ClientCredentialsGrant = "client_credentials";
    public const string TokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange";
    public const string AccessTokenType = "urn:ietf:params:oauth:token-type:access_token";
    public const string IntrospectTokenHint = "access_token";

    // ---- request -----------------------------------------------------------

    public static StsRequestResult CreateRequest(StsSettings settings, ReadOnlySpan<byte> source, IStsValues values,
        long now, Span<byte> output)
    {
        (StsConfig? c, StsError error) = settings.Resolve(values);
        if (c is null)
        {
            return new StsRequestResult(error);
        }
        try
        {
            if (source.Length > c.MaxSource)
            {
                return new StsRequestResult(StsError.SourceInvalid);
            }
            return c.Type == StsType.Jwt ? Mint(c, source, now, output) : Build(c, source, now, output);
        }
        finally
        {
            if (c != settings.Configured)
            {
                c.DisposeKeys(settings.Configured);
            }
        }
    }

    private static StsRequestResult Build(StsConfig c, ReadOnlySpan<byte> source, long now, Span<byte> output)
    {
        ReadOnlySpan<byte> body;
        string? authorization;
        byte[]? authorizationUtf8 = null;
        string? action = null;

        if (c.Type == StsType.WsTrust)
        {
            byte[]? soap = WsTrust.BuildRequest(c, source, now, out StsError error);
            if (soap is null)
            {
                return new StsRequestResult(error);
            }
            body = soap;
            if (!ClientAuthentication.Apply(c.Auth, AuthInput(c, now), null, out authorization))
            {
                return new StsRequestResult(StsError.SettingInvalid);
            }
            action = NonEmpty(c.Endpoint); // liboauth2-sts sends the endpoint URL as soapAction
        }
        else
        {
            if (c.Type != StsType.Cc && source.IsEmpty)
            {
                return new StsRequestResult(StsError.SourceInvalid);
            }
            // one body per thread, reused: nothing allocated per call (an
            // introspection without a cache builds a request per request)
            FormBody form = _form ??= new FormBody(FormCapacity(source));
            form.Clear();
            switch (c.Type)
            {
                case StsType.Ropc:
                    form.Add("grant_type", PasswordGrant);
                    if ((NonEmpty(c.Username) ?? NonEmpty(c.ClientId)) is { } username)
                    {
                        form.Add("username", username);
                    }
                    form.Add("password"u8, source);
                    break;

                case StsType.Cc:
                    form.Add("grant_type", ClientCredentialsGrant);
                    AddIfSet(form, "scope", c.Scope);
                    AddIfSet(form, "audience", c.Audience);
                    AddResources(form, c);
                    break;

                case StsType.Introspect: // RFC 7662 2.1
                    form.Add("token"u8, source);
                    form.Add("token_type_hint", IntrospectTokenHint);
                    break;

                default: // otx
                    form.Add("grant_type", TokenExchangeGrant);
                    form.Add("subject_token"u8, source);
                    if (!ParamsHave(c, "subject_token_type"u8))
                    {
                        form.Add("subject_token_type", NonEmpty(c.SubjectTokenType) ?? AccessTokenType);
                    }
                    AddIfSet(form, "audience", c.Audience);
                    AddIfSet(form, "scope", c.Scope);
                    AddResources(form, c);
                    AddIfSet(form, "requested_token_type", c.RequestedTokenType);
                    if (!string.IsNullOrEmpty(c.ActorToken))
                    {
                        // RFC 8693 2.1: actor_token_type only with an actor_token
                        form.Add("actor_token", c.ActorToken);
                        AddIfSet(form, "actor_token_type", c.ActorTokenType);
                    }
                    break;
            }

            if (c.BasicAuthorization is { } basic)
            {
                authorization = basic;
                authorizationUtf8 = c.BasicAuthorizationUtf8;
            }
            else if (!ClientAuthentication.Apply(c.Auth, AuthInput(c, now), form, out authorization))
            {
                return new StsRequestResult(StsError.SettingInvalid);
            }
            else if (c.Auth is ClientAuthMethod.ClientSecretBasic or ClientAuthMethod.Basic)
            {
                c.BasicAuthorization = authorization;
            }
            if (c.Params is not null)
            {
                foreach (KeyValuePair<byte[], byte[]> p in c.Params)
                {
                    form.Add(p.Key, p.Value);
                }
            }
            body = form.Written;
            if (form.Capacity > ReusedFormMax)
            {
                _form = null; // an unusually long token: do not keep its buffer
            }
        }

        int authLength = authorizationUtf8?.Length
            ?? (authorization is null ? 0 : Encoding.UTF8.GetByteCount(authorization));
        int actionLength = action is null ? 0 : Encoding.UTF8.GetByteCount(action);
        long needed = (long)body.Length + authLength + actionLength;
        if (needed > int.MaxValue)
        {
            return new StsRequestResult(StsError.SourceInvalid);
        }
        if (needed > output.Length)
        {
            return new StsRequestResult(StsError.BufferTooSmall, needed: (int)needed);
        }
        body.CopyTo(output);
        if (authorizationUtf8 is not null)
        {
            authorizationUtf8.CopyTo(output[body.Length..]);
        }
        else if (authorization is not null)
        {
            Encoding.UTF8.GetBytes(authorization, output[body.Length..]);
        }
        if (action is not null)
        {
            Encoding.UTF8.GetBytes(action, output[(body.Length + authLength)..]);
        }
        return new StsRequestResult(StsError.None, body.Length, authLength, actionLength);
    }

    /// <summary>What client authentication needs, made only when it runs (not when the Basic value is kept).</summary>
    private static ClientAuthInput AuthInput(StsConfig c, long now) => new()
    {
        ClientId = NonEmpty(c.ClientId),
        ClientSecret = c.ClientSecret,
        Username = c.Username,
        Password = c.Password,
        Key = c.ClientKey,
        Algorithm = c.Alg,
        Kid = NonEmpty(c.Kid),
        Audience = NonEmpty(c.Aud) ?? c.Endpoint,
        Now = now,
    };

    private const int ReusedFormMax = 16 * 1024;

    [ThreadStatic]
    private static FormBody? _form;

    /// <summary>Room for the source token form-encoded (at most 3 bytes each) and the other members.</summary>
    private static int FormCapacity(ReadOnlySpan<byte> source) =>
        (int)Math.Min(Array.MaxLength, 3L * source.Length + 512);

    private static string? NonEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static void AddIfSet(FormBody form, string name, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            form.Add(name, value);
        }
    }

    private static void AddResources(FormBody form, StsConfig c)
    {
        foreach (string resource in c.Resources)
        {
            AddIfSet(form, "resource", resource);
        }
    }

    private static bool ParamsHave(StsConfig c, ReadOnlySpan<byte> name)
    {
        if (c.Params is not null)
        {
            foreach (KeyValuePair<byte[], byte[]> p in c.Params)
            {
                if (name.SequenceEqual(p.Key))
                {
                    return true;
                }
            }
        }
        return false;
    }

    /// <summary>
    /// Type jwt: a token signed locally with the endpoint's JWK. Payload:
    /// the source's claims (or their projection), then iss/aud/client_id
    /// from the settings when set, sub (setting, else the projection's, else
    /// the source's), iat = now, a fresh jti, exp = the source's numeric exp
    /// or now + lifetime.
    /// </summary>
    private static StsRequestResult Mint(StsConfig c, ReadOnlySpan<byte> source, long now, Span<byte> output)
    {
        if (JsonGuard.Check(source) != JsonShape.Object)
        {
            return new StsRequestResult(StsError.SourceInvalid);
        }
        using JsonDocument doc = JsonGuard.Parse(source.ToArray());
        JsonElement root = doc.RootElement;

        long exp = now + c.Lifetime;
        if (root.TryGetProperty("exp"u8, out JsonElement expElement)
            && NumericDate.Read(expElement, out long e) == NumericDateStatus.Ok)
        {
            exp = Math.Clamp(e, 0, 253402300799);
        }

        var skip = new HashSet<string>(StringComparer.Ordinal) { "iat", "jti", "exp" };
        string? iss = NonEmpty(c.Iss), aud = NonEmpty(c.Aud), clientId = NonEmpty(c.ClientId), sub = NonEmpty(c.Sub);
        if (iss is not null)
        {
            skip.Add("iss");
        }
        if (aud is not null)
        {
            skip.Add("aud");
        }
        if (clientId is not null)
        {
            skip.Add("client_id");
        }
        if (sub is not null)
        {
            skip.Add("sub");
        }

        Keys.JwsSigner key = c.MintKey!;
        string token = JwsWriter.Create(key, c.Alg ?? key.DefaultAlgorithm,
            NonEmpty(c.Kid) is { } kid ? Encoding.UTF8.GetBytes(kid) : key.Kid, w =>
            {
                bool wroteSub;
                if (c.Claims is { } projection)
                {
                    wroteSub = projection.Write(root, w, skip).Contains("sub");
                }
                else
                {
                    wroteSub = false;
                    foreach (JsonProperty member in root.EnumerateObject())
                    {
                        if (!skip.Contains(member.Name))
                        {
                            member.WriteTo(w);
                            wroteSub |= member.Name == "sub";
                        }
                    }
                }
                if (iss is not null)
                {
                    w.WriteString("iss"u8, iss);
                }
                if (sub is not null)
                {
                    w.WriteString("sub"u8, sub);
                }
                else if (!wroteSub && root.TryGetProperty("sub"u8, out JsonElement sourceSub))
                {
                    w.WritePropertyName("sub"u8);
                    sourceSub.WriteTo(w);
                }
                if (aud is not null)
                {
                    w.WriteString("aud"u8, aud);
                }
                if (clientId is not null)
                {
                    w.WriteString("client_id"u8, clientId);
                }
                w.WriteNumber("iat"u8, now);
                w.WriteString("jti"u8, JwsWriter.RandomId());
                w.WriteNumber("exp"u8, exp);
            });

        int length = Encoding.ASCII.GetByteCount(token);
        if (length > output.Length)
        {
            return new StsRequestResult(StsError.BufferTooSmall, needed: length);
        }
        Encoding.ASCII.GetBytes(token, output);
        return new StsRequestResult(StsError.None, length, ttl: Ttl(c.Expiry, exp - now));
    }

    /// <summary>
    /// How long a token of <paramref name="lifetime"/> seconds may be cached:
    /// its lifetime less a margin of a tenth of it, at most 30 seconds (so a
    /// cached token is not handed out in its last moments, and short-lived
    /// tokens keep most of their life), capped at <paramref name="expiry"/>;
    /// 0 (do not cache) when nothing is left.
    /// </summary>
    public static long Ttl(long expiry, long lifetime)
    {
        if (lifetime <= 0)
        {
            return 0;
        }
        long ttl = lifetime - Math.Min(30, lifetime / 10);
        return Math.Max(0, Math.Min(expiry, ttl));
    }

    // ---- response ----------------------------------------------------------

    public static StsResponseResult ReadResponse(StsSettings settings, int status, ReadOnlySpan<byte> body, long now,
        Span<byte> output)
    {
        StsConfig c = settings.Configured;
        if (c.Type == StsType.Jwt)
        {
            return new StsResponseResult(StsError.Argument); // minted locally: no answer to read
        }
        if (body.Length > MaxResponse)
        {
            return new StsResponseResult(StsError.ResponseTooLarge);
        }
        bool ok = status is >= 200 and <= 299, client = status is >= 400 and <= 499;
        bool server = status is >= 500 and <= 599;
        if (!ok && !client && !(server && c.Type == StsType.WsTrust))
        {
            return new StsResponseResult(StsError.ServerError); // 1xx, 3xx, 5xx without a SOAP Fault to read
        }
        if (!System.Text.Unicode.Utf8.IsValid(body))
        {
            return new StsResponseResult(server ? StsError.ServerError : StsError.Utf8Invalid);
        }
        return c.Type == StsType.WsTrust
            ? ReadSoap(c, ok, server, body, now, output)
            : ReadJson(c, ok, body, output);
    }

    private static StsResponseResult ReadSoap(StsConfig c, bool ok, bool server, ReadOnlySpan<byte> body, long now,
        Span<byte> output)
    {
        WsTrust.Answer answer = WsTrust.Read(body);
        if (answer.FaultCode is not null)
        {
            return Refusal(StsError.Rejected, answer.FaultCode, output);
        }
        if (server)
        {
            return new StsResponseResult(StsError.ServerError);
        }
        if (!ok)
        {
            return Refusal(StsError.Rejected, "", output);
        }
        if (answer.Error != StsError.None)
        {
            return new StsResponseResult(answer.Error);
        }
        byte[] token = answer.Token!;
        if (!TokenChars.Valid(token))
        {
            return new StsResponseResult(StsError.TokenChars);
        }
        if (token.Length > output.Length)
        {
            return new StsResponseResult(StsError.BufferTooSmall, token.Length);
        }
        token.CopyTo(output);
        long ttl = answer.LifetimeInvalid ? 0
            : answer.Expires is { } expires ? Ttl(c.Expiry, expires.ToUnixTimeSeconds() - now)
            : c.Expiry;
        return new StsResponseResult(StsError.None, token.Length, -1, -1, ttl);
    }

    /// <summary>
    /// An OAuth 2.0 token response (RFC 6749 5.1, RFC 8693 2.2). expires_in:
    /// an integer, a number (floored) or a string of digits (sent by some
    /// servers); negative or zero means do not cache; absent, non-finite,
    /// or otherwise unusable means the configured expiry.
    /// </summary>
    private static StsResponseResult ReadJson(StsConfig c, bool ok, ReadOnlySpan<byte> body, Span<byte> output)
    {
        JsonShape shape = JsonGuard.Check(body);
        if (shape != JsonShape.Object)
        {
            if (!ok)
            {
                return Refusal(StsError.Rejected, "", output);
            }
            return new StsResponseResult(shape is JsonShape.Array or JsonShape.Scalar
                ? StsError.JsonNotObject : StsError.JsonInvalid);
        }

        using JsonDocument doc = JsonGuard.Parse(body.ToArray());
        JsonElement root = doc.RootElement;
        if (root.TryGetProperty("error"u8, out JsonElement error) || !ok)
        {
            string code = TryString(error) ?? "";
            return Refusal(TokenErrors.KindOf(code) == TokenErrorKind.Forbidden
                ? StsError.Forbidden : StsError.Rejected, code, output);
        }

        if (!root.TryGetProperty("access_token"u8, out JsonElement tokenElement)
            || tokenElement.ValueKind != JsonValueKind.String || tokenElement.ValueEquals(""u8))
        {
            return new StsResponseResult(StsError.ResponseNoToken);
        }
        // a lone surrogate escape cannot become UTF-8: not a usable token
        byte[]? tokenBytes = TryString(tokenElement) is { } token ? Encoding.UTF8.GetBytes(token) : null;
        if (tokenBytes is null || !TokenChars.Valid(tokenBytes))
        {
            return new StsResponseResult(StsError.TokenChars);
        }
        byte[]? issued = StringMember(root, "issued_token_type"u8);
        byte[]? type = StringMember(root, "token_type"u8);

        long ttl = c.Expiry;
        if (root.TryGetProperty("expires_in"u8, out JsonElement expiresIn) && ExpiresIn(expiresIn) is { } seconds)
        {
            ttl = Ttl(c.Expiry, seconds);
        }

        int needed = tokenBytes.Length + (issued?.Length ?? 0) + (type?.Length ?? 0);
        if (needed > output.Length)
        {
            return new StsResponseResult(StsError.BufferTooSmall, needed);
        }
        tokenBytes.CopyTo(output);
        int at = tokenBytes.Length;
        issued?.CopyTo(output[at..]);
        at += issued?.Length ?? 0;
        type?.CopyTo(output[at..]);
        return new StsResponseResult(StsError.None, tokenBytes.Length, issued?.Length ?? -1, type?.Length ?? -1, ttl);
    }

    private static byte[]? StringMember(JsonElement root, ReadOnlySpan<byte> name) =>
        root.TryGetProperty(name, out JsonElement e) && TryString(e) is { } text ? Encoding.UTF8.GetBytes(text) : null;

    /// <summary>The text of a JSON string; null for other kinds and for strings holding a lone surrogate.</summary>
    private static string? TryString(JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            return null;
        }
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Seconds, clamped to [-1, 10^10]; null when unusable (then the expiry applies).</summary>
    internal static long? ExpiresIn(JsonElement value)
    {
        long seconds;
        if (value.ValueKind == JsonValueKind.Number)
        {
            // the one reading of time values (exact, rounded down); beyond
            // int64 is "already over" when negative, else capped below
            NumericDateStatus status = NumericDate.Read(value, out seconds);
            if (status == NumericDateStatus.OutOfRange)
            {
                seconds = value.GetRawText().StartsWith('-') ? -1 : long.MaxValue;
            }
            else if (status != NumericDateStatus.Ok)
            {
                return null;
            }
        }
        else if (TryString(value) is { Length: > 0 and <= 15 } text
            && IsDigits(text))
        {
            seconds = long.Parse(text, System.Globalization.CultureInfo.InvariantCulture);
        }
        else
        {
            return null;
        }
        return Math.Clamp(seconds, -1, 10_000_000_000);
    }

    private static bool IsDigits(string text)
    {
        foreach (char ch in text)
        {
            if (!char.IsAsciiDigit(ch))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>An error or fault code into the output: printable ASCII ('?' for anything else), at most <see cref="ErrorMax"/> bytes.</summary>
    private static StsResponseResult Refusal(StsError error, string code, Span<byte> output) =>
        new(error, TokenErrors.WriteCode(code, output));

    // ---- cache key ---------------------------------------------------------

    /// <summary>
    /// SHA-256 over "nox-sts-key-1", then every setting pair (name, value for
    /// this request), then the source, each length-prefixed (4 bytes, big
    /// endian), so no two different inputs serialise alike.
    /// </summary>
    public static bool CacheKey(StsSettings settings, ReadOnlySpan<byte> source, IStsValues values, Span<byte> output)
    {
        var data = new List<byte>(256 + source.Length);
        Append(data, "nox-sts-key-1"u8);
        for (int i = 0; i < settings.Count; i++)
        {
            Append(data, settings.Name(i));
            Append(data, settings.Value(i, values));
        }
        Append(data, source);
        return TokenResponses.Sha256(data.ToArray(), output);
    }

    private static void Append(List<byte> data, ReadOnlySpan<byte> item)
    {
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(length, item.Length);
        data.AddRange(length);
        data.AddRange(item);
    }
}
