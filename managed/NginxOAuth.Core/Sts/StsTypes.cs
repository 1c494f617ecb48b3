using System;

namespace NginxOAuth.Core.Sts;

/// <summary>Outcomes of the STS exports; every value equals the NOX_* code of ngx_oauth_abi.h.</summary>
public enum StsError
{
    None = 0,
    JsonInvalid = 30,
    JsonNotObject = 31,
    ResponseTooLarge = 52,
    ResponseNoToken = 53,
    /// <summary>HTTP 4xx, an OAuth "error", a SOAP Fault (-> 401).</summary>
    Rejected = 60,
    /// <summary>access_denied / invalid_scope / insufficient_scope (-> 403).</summary>
    Forbidden = 61,
    /// <summary>HTTP 5xx or any other status that is neither 2xx nor 4xx (-> 502).</summary>
    ServerError = 62,
    XmlInvalid = 63,
    XmlDtd = 64,
    TokenChars = 65,
    Utf8Invalid = 66,
    SourceInvalid = 67,
    SettingUnknown = 70,
    SettingInvalid = 71,
    KeyInvalid = 72,
    Argument = -1,
    BufferTooSmall = -2,
}

/// <summary>The "type" setting (NOX_STS_*).</summary>
public enum StsType
{
    WsTrust = 1,
    Ropc = 2,
    Otx = 3,
    Cc = 4,
    Jwt = 5,
    /// <summary>An RFC 7662 introspection request (auth_oauth2_token): token=source, token_type_hint=access_token, client authentication.</summary>
    Introspect = 6,
}

/// <summary>The setting names of nox_sts_create.</summary>
public enum StsSettingName
{
    Type,
    Endpoint,
    Auth,
    ClientId,
    ClientSecret,
    Username,
    Password,
    Jwk,
    Kid,
    Aud,
    Alg,
    Iss,
    Sub,
    Params,
    AppliesTo,
    TokenType,
    ValueType,
    WsaTo,
    Audience,
    Scope,
    Resource,
    RequestedTokenType,
    SubjectTokenType,
    ActorToken,
    ActorTokenType,
    Expiry,
    Claims,
    Lifetime,
    /// <summary>"param.NAME" (repeatable).</summary>
    Param,
    ClientIdDefault,
    MaxSource,
}

/// <summary>
/// Per-request values of the settings (nox_sts_* "values"): one entry per
/// setting pair; no override means the configured value.
/// </summary>
public interface IStsValues
{
    int Count { get; }

    /// <summary>True when pair <paramref name="index"/> has a value for this request (possibly empty).</summary>
    bool TryGet(int index, out ReadOnlySpan<byte> value);
}

/// <summary>Overrides held in an array (null: the configured value).</summary>
public sealed class ArrayStsValues : IStsValues
{
    public static readonly ArrayStsValues None = new(Array.Empty<byte[]?>());

    private readonly byte[]?[] _values;

    public ArrayStsValues(byte[]?[] values)
    {
        _values = values;
    }

    public int Count => _values.Length;

    public bool TryGet(int index, out ReadOnlySpan<byte> value)
    {
        if ((uint)index < (uint)_values.Length && _values[index] is { } v)
        {
            value = v;
            return true;
        }
        value = default;
        return false;
    }
}

/// <summary>nox_sts_create: the configuration, or the error and the offending pair's index.</summary>
public readonly struct StsCreateResult
{
    public StsCreateResult(StsSettings? settings, StsError error, int detail)
    {
        Settings = settings;
        Error = error;
        Detail = detail;
    }

    public StsSettings? Settings { get; }

    public StsError Error { get; }

    public int Detail { get; }
}

/// <summary>
/// nox_sts_request: lengths of the body, the Authorization value (0: none)
/// and the SOAPAction value (0: none), written one after the other; for
/// type jwt the minted token and its cache lifetime. On BufferTooSmall,
/// <see cref="Needed"/> is the capacity needed.
/// </summary>
public readonly struct StsRequestResult
{
    public StsRequestResult(StsError error, int bodyLength = 0, int authorizationLength = 0, int actionLength = 0,
        long ttl = 0, int needed = 0)
    {
        Error = error;
        BodyLength = bodyLength;
        AuthorizationLength = authorizationLength;
        ActionLength = actionLength;
        Ttl = ttl;
        Needed = needed;
    }

    public StsError Error { get; }

    public int BodyLength { get; }

    public int AuthorizationLength { get; }

    public int ActionLength { get; }

    public long Ttl { get; }

    public int Needed { get; }
}

/// <summary>
/// nox_sts_response: on success the token, issued_token_type and token_type
/// lengths (-1: absent) and the cache lifetime; on Rejected/Forbidden the
/// error code's length in <see cref="TokenLength"/>.
/// </summary>
public readonly struct StsResponseResult
{
    public StsResponseResult(StsError error, int tokenLength = 0, int issuedTypeLength = -1, int tokenTypeLength = -1,
        long ttl = 0)
    {
        Error = error;
        TokenLength = tokenLength;
        IssuedTypeLength = issuedTypeLength;
        TokenTypeLength = tokenTypeLength;
        Ttl = ttl;
    }

    public StsError Error { get; }

    public int TokenLength { get; }

    public int IssuedTypeLength { get; }

    public int TokenTypeLength { get; }

    public long Ttl { get; }
}
