using NginxOAuth.IntegrationTests.Tokens;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>The keys most fixtures share.</summary>
internal static class Keys
{
    public static SigningKey Rs256 => AlgVariant.Get("RS256").Key();

    public static SigningKey Es256 => AlgVariant.Get("ES256").Key();

    public static SigningKey Hs256 => AlgVariant.Get("HS256").Key();

    /// <summary>A JWKS holding <see cref="Rs256"/>, <see cref="Es256"/> and <see cref="Hs256"/>.</summary>
    public static string DefaultJwks => TokenFactory.Jwks(Rs256, Es256, Hs256);

    /// <summary>A valid RS256 token for <paramref name="sub"/>.</summary>
    public static string Token(string sub = "alice") => TokenFactory.Sign(Rs256, TokenFactory.Claims(sub));
}
