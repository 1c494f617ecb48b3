using System;
using System.Collections.Generic;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using NginxOAuth.Core.Sts;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>Builders for STS settings, requests and the private JWKs the STS tests sign with.</summary>
internal static class Sts
{
    public const string Endpoint = "https://sts.example/token";

    /// <summary>Settings from "name", "value", "name", "value", ...</summary>
    public static StsCreateResult TryCreate(params string[] nameValues)
    {
        var pairs = new List<KeyValuePair<byte[], byte[]>>();
        for (int i = 0; i < nameValues.Length; i += 2)
        {
            pairs.Add(new(T.U(nameValues[i]), T.U(nameValues[i + 1])));
        }
        return StsSettings.Create(pairs);
    }

    public static StsSettings Create(params string[] nameValues)
    {
        StsCreateResult result = TryCreate(nameValues);
        Assert.That(result.Error, Is.EqualTo(StsError.None), $"settings refused (detail {result.Detail})");
        return result.Settings!;
    }

    /// <summary>A built request: its status, body, Authorization and SOAPAction values, and ttl.</summary>
    public sealed record Built(StsError Error, string Body, string? Authorization, string? Action, long Ttl, int Needed);

    public static Built Request(StsSettings settings, string source, long now = T.Now, byte[]?[]? values = null,
        int capacity = 1 << 20) => Request(settings, T.U(source), now, values, capacity);

    public static Built Request(StsSettings settings, byte[] source, long now = T.Now, byte[]?[]? values = null,
        int capacity = 1 << 20)
    {
        var output = new byte[capacity];
        StsRequestResult r = StsExchange.CreateRequest(settings, source,
            values is null ? ArrayStsValues.None : new ArrayStsValues(values), now, output);
        if (r.Error != StsError.None)
        {
            return new Built(r.Error, "", null, null, r.Ttl, r.Needed);
        }
        string body = Encoding.UTF8.GetString(output, 0, r.BodyLength);
        string? auth = r.AuthorizationLength == 0 ? null
            : Encoding.UTF8.GetString(output, r.BodyLength, r.AuthorizationLength);
        string? action = r.ActionLength == 0 ? null
            : Encoding.UTF8.GetString(output, r.BodyLength + r.AuthorizationLength, r.ActionLength);
        return new Built(r.Error, body, auth, action, r.Ttl, r.Needed);
    }

    /// <summary>A form body decoded independently of the code under test: (name, value) in order.</summary>
    public static List<KeyValuePair<string, string>> Form(string body)
    {
        Assert.That(body, Does.Match("^[A-Za-z0-9._~%+=&-]*$"), "form bodies are fully encoded");
        return body.Split('&', StringSplitOptions.RemoveEmptyEntries).Select(p =>
        {
            string[] nv = p.Split('=', 2);
            return new KeyValuePair<string, string>(Decode(nv[0]), nv.Length > 1 ? Decode(nv[1]) : "");
        }).ToList();
    }

    private static string Decode(string s) => Uri.UnescapeDataString(s.Replace('+', ' '));

    public static string[] Values(List<KeyValuePair<string, string>> form, string name) =>
        form.Where(p => p.Key == name).Select(p => p.Value).ToArray();

    public static string One(List<KeyValuePair<string, string>> form, string name)
    {
        string[] values = Values(form, name);
        Assert.That(values, Has.Length.EqualTo(1), $"{name} appears once");
        return values[0];
    }

    /// <summary>A response read: status, the token (or error code), the two types and ttl.</summary>
    public sealed record Read(StsError Error, string Token, string? IssuedType, string? TokenType, long Ttl);

    public static Read Response(StsSettings settings, int status, string body, long now = T.Now) =>
        Response(settings, status, T.U(body), now);

    public static Read Response(StsSettings settings, int status, byte[] body, long now = T.Now)
    {
        var output = new byte[body.Length + 256];
        StsResponseResult r = StsExchange.ReadResponse(settings, status, body, now, output);
        string token = r.TokenLength > 0 ? Encoding.UTF8.GetString(output, 0, r.TokenLength) : "";
        int at = Math.Max(r.TokenLength, 0);
        string? issued = null, type = null;
        if (r.Error == StsError.None)
        {
            if (r.IssuedTypeLength >= 0)
            {
                issued = Encoding.UTF8.GetString(output, at, r.IssuedTypeLength);
                at += r.IssuedTypeLength;
            }
            if (r.TokenTypeLength >= 0)
            {
                type = Encoding.UTF8.GetString(output, at, r.TokenTypeLength);
            }
        }
        return new Read(r.Error, token, issued, type, r.Ttl);
    }

    // ---- private JWKs -------------------------------------------------------

    public static string RsaPrivateJwk(RSA rsa, string? kid = null)
    {
        RSAParameters p = rsa.ExportParameters(true);
        return "{\"kty\":\"RSA\"" + (kid is null ? "" : ",\"kid\":\"" + kid + "\"")
            + ",\"n\":\"" + T.B64(p.Modulus!) + "\",\"e\":\"" + T.B64(p.Exponent!) + "\",\"d\":\"" + T.B64(p.D!)
            + "\",\"p\":\"" + T.B64(p.P!) + "\",\"q\":\"" + T.B64(p.Q!) + "\",\"dp\":\"" + T.B64(p.DP!)
            + "\",\"dq\":\"" + T.B64(p.DQ!) + "\",\"qi\":\"" + T.B64(p.InverseQ!) + "\"}";
    }

    public static string EcPrivateJwk(ECDsa ec, string crv, string? kid = null)
    {
        ECParameters p = ec.ExportParameters(true);
        return "{\"kty\":\"EC\",\"crv\":\"" + crv + "\"" + (kid is null ? "" : ",\"kid\":\"" + kid + "\"")
            + ",\"x\":\"" + T.B64(p.Q.X!) + "\",\"y\":\"" + T.B64(p.Q.Y!) + "\",\"d\":\"" + T.B64(p.D!) + "\"}";
    }

    public static string EdPrivateJwk(EdKey ed, string? kid = null) =>
        "{\"kty\":\"OKP\",\"crv\":\"" + (ed.Ed448 ? "Ed448" : "Ed25519") + "\""
        + (kid is null ? "" : ",\"kid\":\"" + kid + "\"")
        + ",\"x\":\"" + T.B64(ed.PublicKey) + "\",\"d\":\"" + T.B64(ed.Seed) + "\"}";

    /// <summary>The decoded header and payload of a compact JWS.</summary>
    public static (string Header, string Payload) Parts(string jwt)
    {
        string[] parts = jwt.Split('.');
        Assert.That(parts, Has.Length.EqualTo(3));
        return (Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(parts[0])),
            Encoding.UTF8.GetString(System.Buffers.Text.Base64Url.DecodeFromChars(parts[1])));
    }
}
