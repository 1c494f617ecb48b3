using System.Text.Json.Nodes;
using NginxOAuth.IntegrationTests.Tokens;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// The two issuers of the auth_jwt_provider fixtures: A's keys are in a key
/// file, B's behind a key request to /b/certs of a key server.
/// </summary>
public static class ProviderKeys
{
    public const string IssA = "https://a.example";
    public const string IssB = "https://b.example";

    public static readonly SigningKey KeyA = AlgVariant.Get("RS256").Key(21);
    public static readonly SigningKey KeyB = AlgVariant.Get("ES256").Key(22);

    /// <summary>Serves B's key set at /b/certs of <paramref name="keys"/>; writes A's key file and returns its path.</summary>
    public static string Serve(NginxInstance nginx, FakeHttpServer keys)
    {
        keys.Set("/b/certs", FakeResponse.Json(TokenFactory.Jwks(KeyB)));
        return nginx.WriteFile("a.jwks", TokenFactory.Jwks(KeyA));
    }

    /// <summary>A JWS of <paramref name="sub"/> (plus <paramref name="extra"/>) signed by <paramref name="key"/>, with iss unless it is null.</summary>
    public static string Token(SigningKey key, string? iss, JsonObject? extra = null, JsonObject? header = null,
        string sub = "alice")
    {
        JsonObject claims = TokenFactory.Claims(sub, extra);
        if (iss is not null)
        {
            claims["iss"] = iss;
        }

        return TokenFactory.Sign(key, claims, header);
    }
}
