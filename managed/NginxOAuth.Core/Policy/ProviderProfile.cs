using System;
using System.Collections.Generic;
using System.Text.Unicode;

namespace NginxOAuth.Core.Policy;

/// <summary>RFC 9068 options of a provider (NOX_PROFILE_*).</summary>
[Flags]
public enum ProviderOptions
{
    None = 0,
    /// <summary>The header's "typ" must be "at+jwt" or "application/at+jwt" (case-insensitive).</summary>
    AccessTokenType = 0x1,
    /// <summary>A numeric "exp" must be present (and not passed, whatever auth_jwt_validate_exp says).</summary>
    RequireExp = 0x2,
}

/// <summary>
/// What one issuer's tokens must satisfy beyond the location's checks
/// (auth_jwt_provider): "iss" equal to the issuer, and the RFC 9068
/// options. Immutable once the policy is built.
/// </summary>
public sealed class ProviderProfile
{
    private readonly List<byte[]> _audiences = new();

    internal ProviderProfile(byte[] issuer, ProviderOptions options, long maxLifetime)
    {
        Issuer = issuer;
        Options = options;
        MaxLifetime = maxLifetime;
    }

    /// <summary>The exact "iss" (UTF-8) a token must carry.</summary>
    public byte[] Issuer { get; }

    public ProviderOptions Options { get; }

    /// <summary>The longest exp - iat in seconds; 0: no limit.</summary>
    public long MaxLifetime { get; }

    /// <summary>"aud" must name one of these (a string, or an array holding one); empty: not checked.</summary>
    public IReadOnlyList<byte[]> Audiences => _audiences;

    internal static ConfigError Create(ReadOnlySpan<byte> issuer, ProviderOptions options, long maxLifetime,
        out ProviderProfile? profile)
    {
        profile = null;
        if (issuer.IsEmpty || !Utf8.IsValid(issuer))
        {
            return ConfigError.ValueTypeInvalid;
        }
        if (maxLifetime < 0 || (options & ~(ProviderOptions.AccessTokenType | ProviderOptions.RequireExp)) != 0)
        {
            return ConfigError.ValueTypeInvalid;
        }
        profile = new ProviderProfile(issuer.ToArray(), options, maxLifetime);
        return ConfigError.None;
    }

    internal ConfigError AddAudience(ReadOnlySpan<byte> audience)
    {
        if (audience.IsEmpty || !Utf8.IsValid(audience))
        {
            return ConfigError.ValueTypeInvalid;
        }
        _audiences.Add(audience.ToArray());
        return ConfigError.None;
    }
}
