using System;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.OAuth2;

namespace NginxOAuth.Core.Sts;

/// <summary>
/// An STS exchange configuration (nox_sts_create): the setting pairs as
/// given, and their parsed form built once (keys imported, params and the
/// claim projection parsed). A request whose values override settings
/// parses an effective <see cref="StsConfig"/> from the same code, reusing
/// the configured keys unless a key setting itself is overridden.
/// </summary>
public sealed class StsSettings : IDisposable
{
    private static readonly Dictionary<string, StsSettingName> Known = new(StringComparer.Ordinal)
    {
        ["type"] = StsSettingName.Type,
        ["endpoint"] = StsSettingName.Endpoint,
        ["auth"] = StsSettingName.Auth,
        ["client_id"] = StsSettingName.ClientId,
        ["client_secret"] = StsSettingName.ClientSecret,
        ["username"] = StsSettingName.Username,
        ["password"] = StsSettingName.Password,
        ["jwk"] = StsSettingName.Jwk,
        ["kid"] = StsSettingName.Kid,
        ["aud"] = StsSettingName.Aud,
        ["alg"] = StsSettingName.Alg,
        ["iss"] = StsSettingName.Iss,
        ["sub"] = StsSettingName.Sub,
        ["params"] = StsSettingName.Params,
        ["applies_to"] = StsSettingName.AppliesTo,
        ["token_type"] = StsSettingName.TokenType,
        ["value_type"] = StsSettingName.ValueType,
        ["wsa_to"] = StsSettingName.WsaTo,
        ["audience"] = StsSettingName.Audience,
        ["scope"] = StsSettingName.Scope,
        ["resource"] = StsSettingName.Resource,
        ["requested_token_type"] = StsSettingName.RequestedTokenType,
        ["subject_token_type"] = StsSettingName.SubjectTokenType,
        ["actor_token"] = StsSettingName.ActorToken,
        ["actor_token_type"] = StsSettingName.ActorTokenType,
        ["expiry"] = StsSettingName.Expiry,
        ["claims"] = StsSettingName.Claims,
        ["lifetime"] = StsSettingName.Lifetime,
        ["client_id_default"] = StsSettingName.ClientIdDefault,
        ["max_source"] = StsSettingName.MaxSource,
    };

    /// <summary>"param.NAME": one request parameter NAME (repeatable; the shim's form of params and STSRequestParameter).</summary>
    internal const string ParamPrefix = "param.";

    private readonly byte[][] _names;
    private readonly byte[][] _values;
    private readonly StsSettingName[] _ids;

    private StsSettings(byte[][] names, byte[][] values, StsSettingName[] ids)
    {
        _names = names;
        _values = values;
        _ids = ids;
    }

    public int Count => _ids.Length;

    /// <summary>The configuration parsed from the configured values.</summary>
    public StsConfig Configured { get; private set; } = null!;

    public StsType Type => Configured.Type;

    /// <summary>Parses name/value pairs; on a decision the detail is the offending pair's index.</summary>
    public static StsCreateResult Create(IReadOnlyList<KeyValuePair<byte[], byte[]>> pairs)
    {
        var names = new byte[pairs.Count][];
        var values = new byte[pairs.Count][];
        var ids = new StsSettingName[pairs.Count];
        var seen = new HashSet<StsSettingName>();
        for (int i = 0; i < pairs.Count; i++)
        {
            names[i] = pairs[i].Key;
            values[i] = pairs[i].Value;
            if (!Utf8.TryDecode(names[i], out string? name))
            {
                return new StsCreateResult(null, StsError.SettingUnknown, i);
            }
            if (name!.StartsWith(ParamPrefix, StringComparison.Ordinal) && name.Length > ParamPrefix.Length)
            {
                ids[i] = StsSettingName.Param;
            }
            else if (!Known.TryGetValue(name, out ids[i]))
            {
                return new StsCreateResult(null, StsError.SettingUnknown, i);
            }
            if (!seen.Add(ids[i]) && ids[i] is not (StsSettingName.Resource or StsSettingName.Param))
            {
                return new StsCreateResult(null, StsError.SettingInvalid, i); // only resource repeats
            }
        }

        var settings = new StsSettings(names, values, ids);
        (StsConfig? config, StsError error, int detail) = StsConfig.Parse(settings, values, null);
        if (config is null)
        {
            return new StsCreateResult(null, error, detail);
        }
        settings.Configured = config;
        return new StsCreateResult(settings, StsError.None, -1);
    }

    internal StsSettingName Id(int index) => _ids[index];

    internal ReadOnlySpan<byte> Name(int index) => _names[index];

    /// <summary>The value of pair <paramref name="index"/> for this request.</summary>
    internal ReadOnlySpan<byte> Value(int index, IStsValues values) =>
        values.TryGet(index, out ReadOnlySpan<byte> v) ? v : _values[index];

    /// <summary>
    /// The effective configuration of a request: <see cref="Configured"/>
    /// when nothing is overridden. The caller disposes the result when it is
    /// not <see cref="Configured"/> (it may own a per-request key).
    /// </summary>
    internal (StsConfig? Config, StsError Error) Resolve(IStsValues values)
    {
        // the common case (no value differs from the configured one) allocates nothing
        int first = 0;
        while (first < _values.Length
            && !(values.TryGet(first, out ReadOnlySpan<byte> v) && !v.SequenceEqual(_values[first])))
        {
            first++;
        }
        if (first == _values.Length)
        {
            return (Configured, StsError.None);
        }
        var effective = new byte[_values.Length][];
        for (int i = 0; i < _values.Length; i++)
        {
            effective[i] = i >= first && values.TryGet(i, out ReadOnlySpan<byte> v) && !v.SequenceEqual(_values[i])
                ? v.ToArray()
                : _values[i];
        }
        (StsConfig? config, StsError error, int _) = StsConfig.Parse(this, effective, Configured);
        return (config, error);
    }

    public void Dispose() => Configured?.DisposeKeys(null);
}

/// <summary>Strict UTF-8 decoding of setting values.</summary>
internal static class Utf8
{
    private static readonly UTF8Encoding Strict = new(false, true);

    public static bool TryDecode(ReadOnlySpan<byte> bytes, out string? text)
    {
        try
        {
            text = Strict.GetString(bytes);
            return true;
        }
        catch (ArgumentException)
        {
            text = null;
            return false;
        }
    }
}

/// <summary>One parsed configuration: what a request is built from.</summary>
public sealed class StsConfig
{
    public const long DefaultExpiry = 300;
    public const long DefaultLifetime = 60;
    public const long DefaultMaxSource = 256 * 1024;

    /// <summary>Numbers of seconds above this (about 68 years) are refused.</summary>
    private const long MaxSeconds = int.MaxValue;

    private StsConfig()
    {
    }

    /// <summary>
    /// The Authorization value of client_secret_basic and basic, built on
    /// the first call: it depends on this configuration only.
    /// </summary>
    internal string? BasicAuthorization
    {
        get => _basicAuthorization;
        set
        {
            _basicAuthorization = value;
            BasicAuthorizationUtf8 = value is null ? null : System.Text.Encoding.UTF8.GetBytes(value);
        }
    }

    private string? _basicAuthorization;

    /// <summary><see cref="BasicAuthorization"/> as it is copied out on every call.</summary>
    internal byte[]? BasicAuthorizationUtf8 { get; private set; }

    public StsType Type { get; private set; }

    public ClientAuthMethod Auth { get; private set; }

    public string? Endpoint { get; private set; }

    public string? ClientId { get; private set; }

    public string? ClientSecret { get; private set; }

    public string? Username { get; private set; }

    public string? Password { get; private set; }

    public string? Kid { get; private set; }

    public string? Aud { get; private set; }

    public JwsAlgorithm? Alg { get; private set; }

    public string? Iss { get; private set; }

    public string? Sub { get; private set; }

    /// <summary>The params form string, decoded (null: none).</summary>
    public List<KeyValuePair<byte[], byte[]>>? Params { get; private set; }

    public string? AppliesTo { get; private set; }

    public string? TokenType { get; private set; }

    public string? ValueType { get; private set; }

    public string? WsaTo { get; private set; }

    public string? Audience { get; private set; }

    public string? Scope { get; private set; }

    public List<string> Resources { get; } = new();

    public string? RequestedTokenType { get; private set; }

    public string? SubjectTokenType { get; private set; }

    public string? ActorToken { get; private set; }

    public string? ActorTokenType { get; private set; }

    public long Expiry { get; private set; } = DefaultExpiry;

    public long Lifetime { get; private set; } = DefaultLifetime;

    /// <summary>The largest source token exchanged, in bytes (max_source); a larger one is refused (401).</summary>
    public long MaxSource { get; private set; } = DefaultMaxSource;

    public ClaimProjection? Claims { get; private set; }

    /// <summary>private_key_jwt's key (jwk).</summary>
    public JwsSigner? ClientKey { get; private set; }

    /// <summary>Type jwt's key (endpoint).</summary>
    public JwsSigner? MintKey { get; private set; }

    /// <summary>Disposes the keys this configuration imported itself (not those shared with <paramref name="shared"/>).</summary>
    internal void DisposeKeys(StsConfig? shared)
    {
        if (ClientKey is not null && ClientKey != shared?.ClientKey)
        {
            ClientKey.Dispose();
        }
        if (MintKey is not null && MintKey != shared?.MintKey)
        {
            MintKey.Dispose();
        }
    }

    internal static (StsConfig? Config, StsError Error, int Detail) Parse(StsSettings settings, byte[][] values,
        StsConfig? configured)
    {
        var c = new StsConfig();
        int typeAt = -1, authAt = -1, algAt = -1, keyAt = -1, endpointAt = -1;
        string? clientIdDefault = null;
        (StsConfig?, StsError, int) Fail(StsError error, int at)
        {
            c.DisposeKeys(configured);
            return (null, error, at);
        }

        for (int i = 0; i < values.Length; i++)
        {
            if (!Utf8.TryDecode(values[i], out string? text))
            {
                return Fail(StsError.SettingInvalid, i);
            }
            string v = text!;
            switch (settings.Id(i))
            {
                case StsSettingName.Type:
                    typeAt = i;
                    switch (v)
                    {
                        case "wstrust": c.Type = StsType.WsTrust; break;
                        case "ropc": c.Type = StsType.Ropc; break;
                        case "otx": c.Type = StsType.Otx; break;
                        case "cc": c.Type = StsType.Cc; break;
                        case "jwt": c.Type = StsType.Jwt; break;
                        case "introspect": c.Type = StsType.Introspect; break;
                        default: return Fail(StsError.SettingInvalid, i);
                    }
                    break;
                case StsSettingName.Endpoint: c.Endpoint = v; endpointAt = i; break;
                case StsSettingName.Auth:
                    authAt = i;
                    if (!ClientAuthentication.TryParseMethod(v, out ClientAuthMethod auth))
                    {
                        return Fail(StsError.SettingInvalid, i);
                    }
                    c.Auth = auth;
                    break;
                case StsSettingName.ClientId: c.ClientId = v; break;
                case StsSettingName.ClientSecret: c.ClientSecret = v; break;
                case StsSettingName.Username: c.Username = v; break;
                case StsSettingName.Password: c.Password = v; break;
                case StsSettingName.Jwk: keyAt = i; break;
                case StsSettingName.Kid: c.Kid = v; break;
                case StsSettingName.Aud: c.Aud = v; break;
                case StsSettingName.Alg:
                    algAt = i;
                    if (!JwsAlgorithms.TryParseName(values[i], out JwsAlgorithm alg))
                    {
                        return Fail(StsError.SettingInvalid, i);
                    }
                    c.Alg = alg;
                    break;
                case StsSettingName.Iss: c.Iss = v; break;
                case StsSettingName.Sub: c.Sub = v; break;
                case StsSettingName.Params:
                    if (!FormBody.TryParse(values[i], out List<KeyValuePair<byte[], byte[]>> form))
                    {
                        return Fail(StsError.SettingInvalid, i);
                    }
                    (c.Params ??= new()).AddRange(form);
                    break;
                case StsSettingName.Param:
                    (c.Params ??= new()).Add(new(settings.Name(i)[StsSettings.ParamPrefix.Length..].ToArray(), values[i]));
                    break;
                case StsSettingName.ClientIdDefault: clientIdDefault = v; break;
                case StsSettingName.MaxSource:
                    if (!TryParseSeconds(v, out long maxSource) || maxSource == 0)
                    {
                        return Fail(StsError.SettingInvalid, i);
                    }
                    c.MaxSource = maxSource;
                    break;
                case StsSettingName.AppliesTo: c.AppliesTo = v; break;
                case StsSettingName.TokenType: c.TokenType = v; break;
                case StsSettingName.ValueType: c.ValueType = v; break;
                case StsSettingName.WsaTo: c.WsaTo = v; break;
                case StsSettingName.Audience: c.Audience = v; break;
                case StsSettingName.Scope: c.Scope = v; break;
                case StsSettingName.Resource: c.Resources.Add(v); break;
                case StsSettingName.RequestedTokenType: c.RequestedTokenType = v; break;
                case StsSettingName.SubjectTokenType: c.SubjectTokenType = v; break;
                case StsSettingName.ActorToken: c.ActorToken = v; break;
                case StsSettingName.ActorTokenType: c.ActorTokenType = v; break;
                case StsSettingName.Expiry:
                    if (!TryParseSeconds(v, out long expiry))
                    {
                        return Fail(StsError.SettingInvalid, i);
                    }
                    c.Expiry = expiry;
                    break;
                case StsSettingName.Lifetime:
                    if (!TryParseSeconds(v, out long lifetime))
                    {
                        return Fail(StsError.SettingInvalid, i);
                    }
                    c.Lifetime = lifetime;
                    break;
                case StsSettingName.Claims:
                    c.Claims = ClaimProjection.Parse(v);
                    if (c.Claims is null)
                    {
                        return Fail(StsError.SettingInvalid, i);
                    }
                    break;
            }
        }

        if (typeAt < 0)
        {
            return Fail(StsError.SettingInvalid, -1); // the shim requires "type"
        }

        // STSROPCClientID / STSOTXClientID: the client_id unless client
        // authentication names one; then for ROPC the default username
        if (clientIdDefault is not null)
        {
            if (c.ClientId is null)
            {
                c.ClientId = clientIdDefault;
            }
            else if (c.Type == StsType.Ropc)
            {
                c.Username ??= clientIdDefault;
            }
        }

        if (c.Type == StsType.Jwt)
        {
            // the endpoint holds the private JWK of the minted tokens
            c.MintKey = Key(values, endpointAt, configured?.MintKey, settings, configured);
            if (c.MintKey is null || (c.Alg is { } a && !c.MintKey.CanSign(a)))
            {
                return Fail(StsError.KeyInvalid, endpointAt);
            }
            return (c, StsError.None, -1);
        }

        if (keyAt >= 0)
        {
            c.ClientKey = Key(values, keyAt, configured?.ClientKey, settings, configured);
            if (c.ClientKey is null)
            {
                return Fail(StsError.KeyInvalid, keyAt);
            }
        }

        switch (c.Auth)
        {
            case ClientAuthMethod.PrivateKeyJwt:
                if (c.ClientKey is null || (c.Alg is { } a && !c.ClientKey.CanSign(a)))
                {
                    return Fail(StsError.KeyInvalid, keyAt);
                }
                break;
            case ClientAuthMethod.ClientSecretJwt:
                if (c.Alg is not (null or JwsAlgorithm.HS256 or JwsAlgorithm.HS384 or JwsAlgorithm.HS512))
                {
                    return Fail(StsError.SettingInvalid, algAt);
                }
                break;
        }

        // SOAP carries no form body: only header-borne (or TLS) client authentication fits
        if (c.Type == StsType.WsTrust
            && c.Auth is ClientAuthMethod.ClientSecretPost or ClientAuthMethod.ClientSecretJwt or ClientAuthMethod.PrivateKeyJwt)
        {
            return Fail(StsError.SettingInvalid, authAt);
        }
        return (c, StsError.None, -1);
    }

    /// <summary>The configured key when the key setting is not overridden, else a fresh import.</summary>
    private static JwsSigner? Key(byte[][] values, int at, JwsSigner? configuredKey, StsSettings settings,
        StsConfig? configured)
    {
        if (at < 0)
        {
            return null;
        }
        if (configured is not null && configuredKey is not null
            && values[at].AsSpan().SequenceEqual(settings.Value(at, ArrayStsValues.None)))
        {
            return configuredKey;
        }
        return JwsSigner.FromJwk(values[at]);
    }

    /// <summary>Decimal digits only, at most <see cref="MaxSeconds"/>.</summary>
    private static bool TryParseSeconds(string text, out long value)
    {
        value = 0;
        if (text.Length is 0 or > 10)
        {
            return false;
        }
        foreach (char ch in text)
        {
            if (!char.IsAsciiDigit(ch))
            {
                return false;
            }
            value = value * 10 + (ch - '0');
        }
        return value <= MaxSeconds;
    }
}
