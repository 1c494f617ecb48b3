namespace NginxOAuth.Core;

// Closed outcome enums. Every value equals the NOX_* code of the same name in
// native/include/ngx_oauth_abi.h, so the export layer maps them with a cast.

/// <summary>Decisions about a token (NOX_TOKEN_MALFORMED .. NOX_ZIP_UNSUPPORTED).</summary>
public enum TokenError
{
    None = 0,
    TokenMalformed = 1,
    TokenTooLarge = 2,
    AlgNone = 3,
    AlgUnsupported = 4,
    KeyNotFound = 5,
    BadSignature = 6,
    Expired = 7,
    NotYetValid = 8,
    ExpMissing = 9,
    SubRevoked = 10,
    KidRevoked = 11,
    ClaimFailed = 12,
    HeaderFailed = 13,
    RuleValueInvalid = 14,
    NoKeys = 15,
    CritUnsupported = 16,
    /// <summary>exp or nbf is a number outside a 64-bit second count (1e999, -1e999).</summary>
    TimeInvalid = 17,
    /// <summary>The key the token names (by kid, or the only candidates) was skipped when its set was loaded; detail = why (a ConfigError).</summary>
    KeySkipped = 18,
    /// <summary>A match rule ran out of its time budget; detail = rule index.</summary>
    RuleMatchLimit = 19,
    /// <summary>Not the configured token type (auth_jwt_type): a JWS where a JWE is expected, a nested JWE without cty JWT.</summary>
    TypeMismatch = 21,
    /// <summary>A JWE did not decrypt with any candidate key: wrong key, tampered tag or key, bad CEK. One reason for all.</summary>
    DecryptFailed = 22,
    /// <summary>A JWE with "zip": compressed content is refused.</summary>
    ZipUnsupported = 23,
    /// <summary>A provider's policy: "iss" is not a string equal to the provider's issuer.</summary>
    IssuerMismatch = 80,
    /// <summary>A provider with typ=at+jwt: the header's "typ" is not "at+jwt" or "application/at+jwt" (RFC 9068 2.1).</summary>
    AtTypeMismatch = 81,
    /// <summary>A provider with max_lifetime: exp - iat is longer.</summary>
    LifetimeTooLong = 82,
    /// <summary>A provider with max_lifetime: no numeric "iat".</summary>
    IatMissing = 83,
    /// <summary>A provider with audience=: "aud" names none of them.</summary>
    AudienceMismatch = 84,
}

/// <summary>Decisions about configuration input (NOX_JSON_INVALID .. NOX_VALUE_TYPE_INVALID).</summary>
public enum ConfigError
{
    None = 0,
    JsonInvalid = 30,
    JsonNotObject = 31,
    JsonEmpty = 32,
    KeyUnknownKty = 33,
    KeyUnknownAlg = 34,
    KeyUnknownCurve = 35,
    KeyBadParameter = 36,
    KeyRsaTooSmall = 37,
    KeyRsaTooLarge = 38,
    KeyHmacTooShort = 39,
    KeyBadPem = 40,
    KeyAlgMismatch = 41,
    KeysTooMany = 42,
    KeysTooLarge = 43,
    KeyEmptyKid = 44,
    PathInvalid = 45,
    OperatorInvalid = 46,
    ValueTypeInvalid = 47,
    /// <summary>A match pattern longer than 1 KiB or one that does not compile.</summary>
    PatternInvalid = 48,
    /// <summary>An encryption key ("use":"enc" or a JWE "alg"): never used to verify.</summary>
    KeyForEncryption = 49,
}

/// <summary>Outcomes of reading or re-serializing JSON for nginx variables.</summary>
public enum JsonReadError
{
    None = 0,
    NotFound = 20,
    JsonInvalid = 30,
    PathInvalid = 45,
    /// <summary>NOX_E_BUFFER_TOO_SMALL: the result's length is the size needed.</summary>
    BufferTooSmall = -2,
}

/// <summary>The limits of ngx_oauth_abi.h plus the JSON nesting depth.</summary>
public static class Limits
{
    public const int MaxToken = 256 * 1024;
    public const int MaxHeader = 16 * 1024;
    public const int MaxKeySet = 1024 * 1024;
    public const int MaxKeys = 256;
    public const int MaxJsonDepth = 64;
}
