using System;
using System.Text;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;

namespace NginxOAuth.Core.OAuth2;

/// <summary>How a client authenticates to a token endpoint (RFC 6749 2.3, RFC 7523, OIDC Core 9).</summary>
public enum ClientAuthMethod
{
    /// <summary>No credentials; client_id in the body when one is set.</summary>
    None,
    /// <summary>Authorization: Basic base64(formenc(id) ":" formenc(secret)) (RFC 6749 2.3.1).</summary>
    ClientSecretBasic,
    /// <summary>client_id and client_secret in the body.</summary>
    ClientSecretPost,
    /// <summary>An HS256/384/512 client assertion keyed with the secret's bytes.</summary>
    ClientSecretJwt,
    /// <summary>A client assertion signed with a private JWK.</summary>
    PrivateKeyJwt,
    /// <summary>Mutual TLS: nginx's business; nothing in the body.</summary>
    ClientCert,
    /// <summary>Authorization: Basic base64(username ":" password), not form-encoded.</summary>
    Basic,
}

/// <summary>The inputs of client authentication, independent of who asks (STS, introspection, exchange).</summary>
public sealed class ClientAuthInput
{
    public string? ClientId { get; init; }

    public string? ClientSecret { get; init; }

    public string? Username { get; init; }

    public string? Password { get; init; }

    /// <summary>The private key of private_key_jwt.</summary>
    public JwsSigner? Key { get; init; }

    /// <summary>The assertion's algorithm; default from the key (HS256 for client_secret_jwt).</summary>
    public JwsAlgorithm? Algorithm { get; init; }

    /// <summary>The assertion's kid header; default the JWK's.</summary>
    public string? Kid { get; init; }

    /// <summary>The assertion's "aud" (normally the token endpoint).</summary>
    public string? Audience { get; init; }

    /// <summary>Unix seconds.</summary>
    public long Now { get; init; }
}

public static class ClientAuthentication
{
    public const string AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

    /// <summary>Assertions are valid for this long after iat.</summary>
    public const long AssertionLifetime = 60;

    public static bool TryParseMethod(string name, out ClientAuthMethod method)
    {
        (bool ok, method) = name switch
        {
            "none" => (true, ClientAuthMethod.None),
            "client_secret_basic" => (true, ClientAuthMethod.ClientSecretBasic),
            "client_secret_post" => (true, ClientAuthMethod.ClientSecretPost),
            "client_secret_jwt" => (true, ClientAuthMethod.ClientSecretJwt),
            "private_key_jwt" => (true, ClientAuthMethod.PrivateKeyJwt),
            "client_cert" => (true, ClientAuthMethod.ClientCert),
            "basic" => (true, ClientAuthMethod.Basic),
            _ => (false, ClientAuthMethod.None),
        };
        return ok;
    }

    /// <summary>
    /// Adds the credentials of <paramref name="method"/> to a form body and/or
    /// returns an Authorization header value (null: none). False when an input
    /// the method needs is missing or unusable (no client_id, no secret, no
    /// key, an algorithm that does not fit the key).
    /// </summary>
    public static bool Apply(ClientAuthMethod method, ClientAuthInput input, FormBody? body, out string? authorization)
    {
        authorization = null;
        switch (method)
        {
            case ClientAuthMethod.None:
            case ClientAuthMethod.ClientCert: // RFC 8705 2: the client_id goes with the certificate
                if (!string.IsNullOrEmpty(input.ClientId))
                {
                    body?.Add("client_id", input.ClientId);
                }
                return true;

            case ClientAuthMethod.Basic:
                if (input.Username is null)
                {
                    return false;
                }
                authorization = BasicHeader(input.Username + ":" + (input.Password ?? ""));
                return true;

            case ClientAuthMethod.ClientSecretBasic:
                if (string.IsNullOrEmpty(input.ClientId) || input.ClientSecret is null)
                {
                    return false;
                }
                authorization = BasicHeader(FormBody.Encode(input.ClientId) + ":" + FormBody.Encode(input.ClientSecret));
                return true;

            case ClientAuthMethod.ClientSecretPost:
                if (string.IsNullOrEmpty(input.ClientId) || input.ClientSecret is null || body is null)
                {
                    return false;
                }
                body.Add("client_id", input.ClientId);
                body.Add("client_secret", input.ClientSecret);
                return true;

            case ClientAuthMethod.ClientSecretJwt:
            case ClientAuthMethod.PrivateKeyJwt:
                string? assertion = Assertion(method, input);
                if (assertion is null || body is null)
                {
                    return false;
                }
                body.Add("client_assertion_type", AssertionType);
                body.Add("client_assertion", assertion);
                return true;

            default:
                return false;
        }
    }

    /// <summary>
    /// An RFC 7523 client assertion: iss = sub = client_id, aud, jti (128
    /// random bits), iat = now, exp = now + 60. Null when inputs are missing.
    /// </summary>
    public static string? Assertion(ClientAuthMethod method, ClientAuthInput input)
    {
        if (string.IsNullOrEmpty(input.ClientId) || string.IsNullOrEmpty(input.Audience))
        {
            return null;
        }

        JwsSigner? signer;
        bool owned = false;
        if (method == ClientAuthMethod.ClientSecretJwt)
        {
            if (string.IsNullOrEmpty(input.ClientSecret))
            {
                return null;
            }
            signer = JwsSigner.Hmac(Encoding.UTF8.GetBytes(input.ClientSecret));
            owned = true;
        }
        else
        {
            signer = input.Key;
        }

        try
        {
            if (signer is null)
            {
                return null;
            }
            JwsAlgorithm alg = input.Algorithm ?? signer.DefaultAlgorithm;
            if (!signer.CanSign(alg))
            {
                return null;
            }
            ReadOnlySpan<byte> kid = input.Kid is not null ? Encoding.UTF8.GetBytes(input.Kid) : signer.Kid;
            string clientId = input.ClientId;
            string audience = input.Audience;
            long now = input.Now;
            return JwsWriter.Create(signer, alg, kid, w =>
            {
                w.WriteString("iss"u8, clientId);
                w.WriteString("sub"u8, clientId);
                w.WriteString("aud"u8, audience);
                w.WriteString("jti"u8, JwsWriter.RandomId());
                w.WriteNumber("iat"u8, now);
                w.WriteNumber("exp"u8, now + AssertionLifetime);
            });
        }
        finally
        {
            if (owned)
            {
                signer?.Dispose();
            }
        }
    }

    private static string BasicHeader(string credentials) =>
        "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes(credentials));
}
