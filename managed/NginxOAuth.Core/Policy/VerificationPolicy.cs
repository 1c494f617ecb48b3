using System;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Keys;

namespace NginxOAuth.Core.Policy;

/// <summary>Revocation list kinds (NOX_REVOKE_*).</summary>
public enum RevocationKind
{
    Sub = 0,
    Kid = 1,
}

/// <summary>
/// Everything one nginx location checks: flags, leeway, keys, revocation
/// lists and rules. Built once per location per worker, then only read.
/// </summary>
public sealed class VerificationPolicy : IDisposable
{
    private KeySet[] _keySets = Array.Empty<KeySet>();
    private readonly List<Rule> _rules = new();
    private HashSet<string>? _revokedSubs;
    private HashSet<string>? _revokedKids;
    private byte[]? _delimiter;
    private byte[]? _quote;

    public VerificationPolicy(bool validateExp, bool validateSignature, long leewaySeconds)
    {
        if (leewaySeconds < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(leewaySeconds));
        }
        ValidateExp = validateExp;
        ValidateSignature = validateSignature;
        Leeway = leewaySeconds;
    }

    public bool ValidateExp { get; }

    public bool ValidateSignature { get; }

    public long Leeway { get; }

    /// <summary>Signed (JWS), encrypted (JWE) or nested (JWS in JWE): auth_jwt_type.</summary>
    public JwtType TokenType { get; private set; }

    public void SetTokenType(JwtType type)
    {
        if (type is not (JwtType.Signed or JwtType.Encrypted or JwtType.Nested))
        {
            throw new ArgumentOutOfRangeException(nameof(type));
        }
        TokenType = type;
    }

    public int RuleCount => _rules.Count;

    /// <summary>The provider this policy belongs to (auth_jwt_provider), or null.</summary>
    public ProviderProfile? Profile { get; private set; }

    /// <summary>
    /// Makes this the policy of one provider: tokens must carry
    /// <paramref name="issuer"/> as "iss" and pass the RFC 9068 options.
    /// </summary>
    public ConfigError SetProfile(ReadOnlySpan<byte> issuer, ProviderOptions options, long maxLifetimeSeconds)
    {
        ConfigError error = ProviderProfile.Create(issuer, options, maxLifetimeSeconds, out ProviderProfile? profile);
        if (error == ConfigError.None)
        {
            Profile = profile;
        }
        return error;
    }

    /// <summary>Adds an accepted audience to the provider (after <see cref="SetProfile"/>).</summary>
    public ConfigError AddAudience(ReadOnlySpan<byte> audience) =>
        Profile is { } profile ? profile.AddAudience(audience) : ConfigError.ValueTypeInvalid;

    internal ReadOnlySpan<KeySet> KeySets => _keySets;

    /// <summary>The rules in order, as an array (no enumerator per request); rebuilt by <see cref="AddRule"/>.</summary>
    internal Rule[] Rules { get; private set; } = Array.Empty<Rule>();

    /// <summary>True when some rule reads the payload (a verification then parses it).</summary>
    internal bool HasClaimRules { get; private set; }

    /// <summary>True when some rule reads the header.</summary>
    internal bool HasHeaderRules { get; private set; }

    internal HashSet<string>? RevokedSubs => _revokedSubs;

    internal HashSet<string>? RevokedKids => _revokedKids;

    /// <summary>Adds a shared key set. The policy does not own (or dispose) it.</summary>
    public void AddKeySet(KeySet keySet) => _keySets = [.. _keySets, keySet];

    /// <summary>Adds a revocation list: a JSON object whose member names are revoked values. Lists union.</summary>
    public ConfigError AddRevocation(RevocationKind kind, ReadOnlySpan<byte> json)
    {
        JsonShape shape = JsonGuard.Check(json);
        if (shape == JsonShape.Invalid)
        {
            return ConfigError.JsonInvalid;
        }
        if (shape is not (JsonShape.Object or JsonShape.DuplicateMember))
        {
            return ConfigError.JsonNotObject; // a repeated name in a list is harmless
        }

        using JsonDocument doc = JsonGuard.Parse(json.ToArray());
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            return ConfigError.JsonNotObject; // DuplicateMember says nothing of the root: [{"a":1,"a":2}]
        }
        var names = new List<string>();
        foreach (JsonProperty member in doc.RootElement.EnumerateObject())
        {
            names.Add(member.Name);
        }

        // An empty list ({}) is "nothing revoked yet": it loads, and its
        // checks (a string sub, a non-empty kid) apply as for any list.
        HashSet<string> set = kind == RevocationKind.Kid
            ? _revokedKids ??= new HashSet<string>(StringComparer.Ordinal)
            : _revokedSubs ??= new HashSet<string>(StringComparer.Ordinal);
        set.UnionWith(names);
        return ConfigError.None;
    }

    /// <summary>
    /// Turns on delimiter paths for rules added afterwards. Empty arguments
    /// mean the defaults "." and "\"".
    /// </summary>
    public void SetNested(ReadOnlySpan<byte> delimiter, ReadOnlySpan<byte> quote)
    {
        _delimiter = delimiter.IsEmpty ? ClaimPath.DefaultDelimiter : delimiter.ToArray();
        _quote = quote.IsEmpty ? ClaimPath.DefaultQuote : quote.ToArray();
    }

    /// <summary>
    /// Parses a rule path the way rules name claims: names containing 0x00 are
    /// multi-name paths; '.' or '[' starts a JQ-like path; after
    /// <see cref="SetNested"/> a delimiter/quote path; otherwise one literal name.
    /// </summary>
    public ClaimPathResult ParseRulePath(ReadOnlySpan<byte> path)
    {
        if (path.IndexOf((byte)0) >= 0)
        {
            return ClaimPath.Parse(path, PathKind.Names, default, default);
        }
        if (_delimiter is not null || ClaimPath.IsJqLike(path))
        {
            return ClaimPath.Parse(path, PathKind.Nested, _delimiter, _quote);
        }
        return ClaimPath.Parse(path, PathKind.Name, default, default);
    }

    /// <summary>Adds a rule; rules are numbered from 0 in the order added.</summary>
    public ConfigError AddRule(RuleTarget target, ReadOnlySpan<byte> path, RuleOperator op,
        RuleValueKind kind, ReadOnlySpan<byte> value) => AddRule(target, path, op, false, kind, value);

    /// <summary>
    /// Adds a rule with the "!" prefix when <paramref name="negate"/> is set:
    /// the operator's true and false swap, its errors (a type that does not
    /// fit, a pattern that does not compile) still fail.
    /// </summary>
    public ConfigError AddRule(RuleTarget target, ReadOnlySpan<byte> path, RuleOperator op, bool negate,
        RuleValueKind kind, ReadOnlySpan<byte> value)
    {
        if ((uint)op > (uint)RuleOperator.Match)
        {
            return ConfigError.OperatorInvalid;
        }
        op = Rule.Base(op, ref negate);
        if (target is not (RuleTarget.Claim or RuleTarget.Header)
            || kind is not (RuleValueKind.String or RuleValueKind.Json or RuleValueKind.Variable))
        {
            throw new ArgumentOutOfRangeException(nameof(target));
        }

        ClaimPathResult parsed = ParseRulePath(path);
        if (parsed.Path is not { } claimPath)
        {
            return parsed.Error;
        }

        JsonDocument? expected = null;
        if (kind == RuleValueKind.String)
        {
            if (!Utf8.IsValid(value))
            {
                return ConfigError.ValueTypeInvalid;
            }
            expected = JsonDocument.Parse(QuoteJsonString(value));
        }
        else if (kind == RuleValueKind.Json)
        {
            JsonShape shape = JsonGuard.Check(value);
            if (shape is JsonShape.Invalid or JsonShape.DuplicateMember)
            {
                return ConfigError.JsonInvalid;
            }
            expected = JsonGuard.Parse(value.ToArray());
        }

        if (expected is not null && !Rule.ExpectedTypeFits(op, expected.RootElement.ValueKind))
        {
            expected.Dispose();
            return ConfigError.ValueTypeInvalid;
        }

        System.Text.RegularExpressions.Regex? pattern = null;
        if (op == RuleOperator.Match && expected is not null)
        {
            ConfigError error = RulePattern.Compile(expected.RootElement.GetString()!, out pattern);
            if (error != ConfigError.None)
            {
                expected.Dispose();
                return error;
            }
        }

        // Like the anchor: leeway widens ordering rules on exp and nbf
        // (nbf: expected + leeway, exp: expected - leeway).
        long adjust = 0;
        if (target == RuleTarget.Claim && op is RuleOperator.Gt or RuleOperator.Ge or RuleOperator.Lt or RuleOperator.Le)
        {
            if (claimPath.IsTopLevel("exp"u8))
            {
                adjust = -Leeway;
            }
            else if (claimPath.IsTopLevel("nbf"u8))
            {
                adjust = Leeway;
            }
        }

        _rules.Add(new Rule(_rules.Count, target, claimPath, op, negate, kind, expected, pattern, adjust));
        Rules = _rules.ToArray();
        HasClaimRules |= target == RuleTarget.Claim;
        HasHeaderRules |= target == RuleTarget.Header;
        return ConfigError.None;
    }

    public void Dispose()
    {
        foreach (Rule rule in _rules)
        {
            rule.Dispose();
        }
        _rules.Clear();
        _keySets = Array.Empty<KeySet>();
    }

    private static byte[] QuoteJsonString(ReadOnlySpan<byte> utf8)
    {
        var json = new List<byte>(utf8.Length + 2) { (byte)'"' };
        foreach (byte b in utf8)
        {
            if (b == (byte)'"' || b == (byte)'\\')
            {
                json.Add((byte)'\\');
                json.Add(b);
            }
            else if (b < 0x20)
            {
                json.AddRange(Encoding.ASCII.GetBytes($"\\u{b:x4}"));
            }
            else
            {
                json.Add(b);
            }
        }
        json.Add((byte)'"');
        return json.ToArray();
    }
}
