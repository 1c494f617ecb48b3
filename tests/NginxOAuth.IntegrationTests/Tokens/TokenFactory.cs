using System;
using System.Buffers.Text;
using System.Collections.Generic;
using System.Linq;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace NginxOAuth.IntegrationTests.Tokens;

/// <summary>Compact JWS tokens, made by hand (any header, any payload) or by Microsoft.IdentityModel.</summary>
public static class TokenFactory
{
    public static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>sub, iat and an exp one hour away, plus <paramref name="extra"/>.</summary>
    public static JsonObject Claims(string sub = "alice", JsonObject? extra = null)
    {
        var claims = new JsonObject { ["sub"] = sub, ["iat"] = Now, ["exp"] = Now + 3600 };
        if (extra is not null)
        {
            foreach (KeyValuePair<string, JsonNode?> kv in extra)
            {
                claims[kv.Key] = kv.Value?.DeepClone();
            }
        }

        return claims;
    }

    /// <summary>Signs <paramref name="payload"/> (default: <see cref="Claims"/>) with alg and kid of the key.</summary>
    public static string Sign(SigningKey key, JsonObject? payload = null, JsonObject? header = null, bool withKid = true)
    {
        JsonObject h = header?.DeepClone().AsObject() ?? new JsonObject();
        h["alg"] ??= key.Alg;
        h["typ"] ??= "JWT";
        if (withKid && !h.ContainsKey("kid"))
        {
            h["kid"] = key.Kid;
        }

        return SignRaw(key, Json(h), Json(payload ?? Claims()));
    }

    /// <summary>Signs exactly these header and payload texts.</summary>
    public static string SignRaw(SigningKey key, string headerJson, string payloadJson)
    {
        string input = Encode(headerJson) + "." + Encode(payloadJson);
        return input + "." + Base64Url.EncodeToString(key.Sign(Encoding.ASCII.GetBytes(input)));
    }

    /// <summary>An unsigned token: {"alg":"none"} and an empty signature.</summary>
    public static string Unsigned(JsonObject? payload = null, string alg = "none") =>
        Encode(Json(new JsonObject { ["alg"] = alg, ["typ"] = "JWT" })) + "." + Encode(Json(payload ?? Claims())) + ".";

    /// <summary>The token with its payload replaced (signature kept).</summary>
    public static string WithPayload(string token, JsonObject payload)
    {
        string[] parts = token.Split('.');
        return parts[0] + "." + Encode(Json(payload)) + "." + parts[2];
    }

    /// <summary>The token with one payload character changed (a claim value altered, signature kept).</summary>
    public static string Tampered(string token)
    {
        string[] parts = token.Split('.');
        JsonObject payload = JsonNode.Parse(Base64Url.DecodeFromChars(parts[1]))!.AsObject();
        payload["sub"] = (string?)payload["sub"] + "x";
        return parts[0] + "." + Encode(Json(payload)) + "." + parts[2];
    }

    /// <summary>A token made by Microsoft.IdentityModel's JsonWebTokenHandler (an independent producer).</summary>
    public static string ByIdentityModel(SigningKey key, string sub, IDictionary<string, object>? claims = null)
    {
        SecurityKey securityKey = key switch
        {
            RsaSigningKey rsa => new RsaSecurityKey(rsa.Rsa) { KeyId = key.Kid },
            EcSigningKey ec => new ECDsaSecurityKey(ec.Ecdsa) { KeyId = key.Kid },
            HmacSigningKey hmac => new SymmetricSecurityKey(hmac.Secret) { KeyId = key.Kid },
            _ => throw new NotSupportedException($"IdentityModel cannot sign {key.Alg}"),
        };

        var descriptor = new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity([new Claim("sub", sub)]),
            Claims = claims,
            IssuedAt = DateTime.UtcNow,
            NotBefore = DateTime.UtcNow.AddMinutes(-1),
            Expires = DateTime.UtcNow.AddHours(1),
            SigningCredentials = new SigningCredentials(securityKey, key.Alg),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    public static string Encode(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));

    public static string Json(JsonNode node) => node.ToJsonString(new JsonSerializerOptions { WriteIndented = false });

    /// <summary>A JWKS document of <paramref name="keys"/>.</summary>
    public static string Jwks(params JsonObject[] keys) =>
        Json(new JsonObject { ["keys"] = new JsonArray(keys.Select(k => (JsonNode)k.DeepClone()).ToArray()) });

    /// <summary>A JWKS with each key's kid and no alg/use.</summary>
    public static string Jwks(params SigningKey[] keys) => Jwks(keys.Select(k => k.Jwk()).ToArray());

    /// <summary>A keyval document: {"kid": "-----BEGIN PUBLIC KEY-----..."}.</summary>
    public static string Keyval(params SigningKey[] keys) =>
        Json(new JsonObject(keys.Select(k => new KeyValuePair<string, JsonNode?>(k.Kid, k.PublicPem()))));
}
