using System;
using System.Collections.Generic;
using System.Text;
using NginxOAuth.Core;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;

namespace NginxOAuth.Fuzz;

/// <summary>Tokens, decoded parts and key sets: what nox_jwt_verify, nox_jwt_check and nox_keyset_load read.</summary>
internal static class JwtTargets
{
    /// <summary>A compact JWS as the client sends it.</summary>
    public static void Jws(ReadOnlySpan<byte> input)
    {
        JwtFixtures f = JwtFixtures.Instance;
        var output = new byte[input.Length];

        VerifyResult signed = JwtVerifier.Verify(f.Signed, input, JwtFixtures.Now, ReadOnlySpan<KeySet>.Empty,
            new NoRuleValues(), output);
        CheckVerify(signed, output, f.Signed.RuleCount);
        if (signed.IsValid)
        {
            // valid with the signature on: one of the policy's keys signed it
            Contract.That(JwtVerifier.VerifySignature(input, [f.Rfc7515]) == TokenError.None,
                "Verify accepted a signature that VerifySignature refuses");
        }

        VerifyResult open = JwtVerifier.Verify(f.Open, input, JwtFixtures.Now, [f.Rfc7520],
            new ArrayRuleValues(f.OpenValues), output);
        CheckVerify(open, output, f.Open.RuleCount);

        Contract.Defined(JwtVerifier.VerifySignature(input, f.BothSets));

        // auth_jwt_provider: the unverified iss that chooses the provider
        var issuer = new byte[input.Length];
        IssuerResult read = ProviderChecks.ReadIssuer(input, issuer, out int issuerLength);
        Contract.Defined(read);
        Contract.That(read != IssuerResult.BufferTooSmall, "ReadIssuer needs more than the token's length");
        Contract.That(read != IssuerResult.Ok || (uint)issuerLength <= (uint)issuer.Length,
            "ReadIssuer wrote beyond its buffer");
        Contract.That(!signed.IsValid || read is IssuerResult.Ok or IssuerResult.NotFound,
            "ReadIssuer refuses a token that verifies");

        // nox_jws_probe (auth_jwt_introspect) routes the same untrusted tokens;
        // with providers its iss also chooses the provider, so it must be ReadIssuer's
        byte[] readIssuer = read == IssuerResult.Ok ? issuer.AsSpan(0, issuerLength).ToArray() : [];
        JwsProbeResult probe = JwsProbe.Probe(input, issuer);
        Contract.Defined(probe.Error);
        Contract.That(probe.IssuerLength >= -1 && probe.IssuerLength <= input.Length, "issuer beyond the buffer");
        Contract.That(probe.Error == TokenError.None || probe.IssuerLength == -1, "an issuer without a JWS");
        Contract.That(!signed.IsValid || probe.Error == TokenError.None,
            "a token that verifies is not a JWS to the probe");
        Contract.That(probe.Error != TokenError.None || (probe.IssuerLength >= 0) == (read == IssuerResult.Ok),
            "the probe and ReadIssuer disagree on whether a JWS has an iss");
        Contract.That(probe.Error != TokenError.None || probe.IssuerLength < 0
            || issuer.AsSpan(0, probe.IssuerLength).SequenceEqual(readIssuer),
            "the probe's iss is not ReadIssuer's");
    }

    /// <summary>A decoded payload (and, the other way round, a decoded header) as the verified-token cache hands them back.</summary>
    public static void Claims(ReadOnlySpan<byte> input)
    {
        JwtFixtures f = JwtFixtures.Instance;
        var values = new ArrayRuleValues([input.ToArray()]);
        foreach (VerificationPolicy policy in f.RulePolicies)
        {
            CheckDecoded(JwtVerifier.CheckDecoded(policy, f.Header, input, JwtFixtures.Now, values), policy);
            CheckDecoded(JwtVerifier.CheckDecoded(policy, input, f.Payload, JwtFixtures.Now, values), policy);
        }
        CheckDecoded(JwtVerifier.CheckDecoded(f.Revoking, f.Header, input, JwtFixtures.Now, new NoRuleValues()),
            f.Revoking);
        CheckDecoded(JwtVerifier.CheckDecoded(f.Provider, f.Header, input, JwtFixtures.Now, new NoRuleValues()),
            f.Provider);
        CheckDecoded(JwtVerifier.CheckDecoded(f.Provider, input, f.Payload, JwtFixtures.Now, new NoRuleValues()),
            f.Provider);
        CheckDecoded(JwtVerifier.CheckDecoded(f.Signed, f.Header, input, JwtFixtures.Now, new NoRuleValues()),
            f.Signed);
    }

    /// <summary>A JWKS or keyval document (a key file, or a key request's answer).</summary>
    public static void KeySet(ReadOnlySpan<byte> input)
    {
        JwtFixtures f = JwtFixtures.Instance;
        foreach (KeySetFormat format in (ReadOnlySpan<KeySetFormat>)[KeySetFormat.Jwks, KeySetFormat.KeyVal])
        {
            KeySetResult result = KeySetLoader.Load(input, format);
            Contract.Defined(result.Error);
            Contract.That((result.Error == ConfigError.None) == (result.KeySet is not null),
                "a key set comes with ConfigError.None and only then");
            if (result.KeySet is not { } set)
            {
                continue;
            }
            using (set)
            {
                foreach (byte[] token in f.SignedTokens)
                {
                    Contract.Defined(JwtVerifier.VerifySignature(token, [set]));
                }
            }
        }
    }

    private static void CheckVerify(VerifyResult r, ReadOnlySpan<byte> output, int rules)
    {
        Contract.Defined(r.Error);
        Contract.That(r.Detail == -1 || (r.Detail >= 0 && r.Detail < rules), "rule index out of range");
        Contract.That(r.HeaderLength >= -1 && r.PayloadLength >= -1, "negative length");
        if (r.HeaderLength >= 0)
        {
            Contract.That(r.HeaderLength > 0 && r.HeaderLength + Math.Max(r.PayloadLength, 0) <= output.Length,
                "decoded parts beyond the output buffer");
            Contract.That(JsonGuard.Check(output[..r.HeaderLength]) == JsonShape.Object,
                "decoded header is not a JSON object");
        }
        if (r.PayloadLength >= 0)
        {
            Contract.That(r.HeaderLength > 0, "a payload without a header");
            Contract.That(JsonGuard.Check(output.Slice(r.HeaderLength, r.PayloadLength)) == JsonShape.Object,
                "decoded payload is not a JSON object");
        }
        Contract.That(!r.IsValid || (r.HeaderLength > 0 && r.PayloadLength > 0), "valid without decoded parts");
    }

    private static void CheckDecoded(VerifyResult r, VerificationPolicy policy)
    {
        Contract.Defined(r.Error);
        Contract.That(r.Detail == -1 || (r.Detail >= 0 && r.Detail < policy.RuleCount), "rule index out of range");
    }
}

/// <summary>Keys and policies built once per process (as a worker builds them once).</summary>
internal sealed class JwtFixtures
{
    /// <summary>Just before the RFC 7515 tokens expire, so they verify whole.</summary>
    public const long Now = Vectors.BeforeRfc7515Exp;

    private static JwtFixtures? _instance;

    public static JwtFixtures Instance => _instance ??= new JwtFixtures();

    private JwtFixtures()
    {
        Rfc7515 = Keys(Vectors.Rfc7515A1Jwk, Vectors.Rfc7515A2Jwk, Vectors.Rfc7515A3Jwk, Vectors.Rfc7515A4Jwk,
            Vectors.Rfc8037Jwk);
        Rfc7520 = Keys(Vectors.Rfc7520RsaJwk, Vectors.Rfc7520EcJwk, Vectors.Rfc7520OctJwk);
        BothSets = [Rfc7515, Rfc7520];

        // signature and expiry on, the RFC 7515 claims required
        Signed = new VerificationPolicy(validateExp: true, validateSignature: true, leewaySeconds: 30);
        Signed.AddKeySet(Rfc7515);
        Add(Signed, RuleTarget.Claim, "iss", RuleOperator.Eq, RuleValueKind.String, "joe");
        Add(Signed, RuleTarget.Claim, ".\"http://example.com/is_root\"", RuleOperator.Eq, RuleValueKind.Json, "true");
        Add(Signed, RuleTarget.Header, "alg", RuleOperator.In, RuleValueKind.Json,
            "[\"HS256\",\"RS256\",\"ES256\",\"ES512\",\"EdDSA\"]");

        // no signature, no expiry: the claims of any decodable token reach the rules
        Open = new VerificationPolicy(validateExp: false, validateSignature: false, leewaySeconds: 5);
        Add(Open, RuleTarget.Claim, "exp", RuleOperator.Gt, RuleValueKind.Json, "1300000000");
        Add(Open, RuleTarget.Claim, ".aud", RuleOperator.Intersect, RuleValueKind.Variable, null);
        Add(Open, RuleTarget.Header, "typ", RuleOperator.Ne, RuleValueKind.String, "none");
        OpenValues = [null, Encoding.UTF8.GetBytes("[\"api\",\"web\"]")];

        Revoking = new VerificationPolicy(validateExp: true, validateSignature: false, leewaySeconds: 0);
        Check(Revoking.AddRevocation(RevocationKind.Sub, "{\"mallory\":true,\"eve\":1}"u8));
        Check(Revoking.AddRevocation(RevocationKind.Kid, "{\"old-key\":null}"u8));

        // auth_jwt_provider with every RFC 9068 option
        Provider = new VerificationPolicy(validateExp: false, validateSignature: false, leewaySeconds: 0);
        Check(Provider.SetProfile("joe"u8, ProviderOptions.AccessTokenType | ProviderOptions.RequireExp, 3600));
        Check(Provider.AddAudience("api"u8));

        var policies = new List<VerificationPolicy>();
        foreach ((RuleTarget target, string path, RuleOperator op, RuleValueKind kind, string? value, bool nested)
            in RuleSpecs)
        {
            var policy = new VerificationPolicy(validateExp: false, validateSignature: false, leewaySeconds: 10);
            if (nested)
            {
                policy.SetNested("::"u8, "'"u8);
            }
            Add(policy, target, path, op, kind, value);
            policies.Add(policy);
        }
        RulePolicies = policies.ToArray();

        SignedTokens = [Encoding.ASCII.GetBytes(Vectors.Rfc7515A1Token), Encoding.ASCII.GetBytes(Vectors.Rfc7515A2Token),
            Encoding.ASCII.GetBytes(Vectors.Rfc7515A3Token), Encoding.ASCII.GetBytes(Vectors.Rfc8037Token),
            Encoding.ASCII.GetBytes(Vectors.Rfc7520Ps384Token)];
    }

    /// <summary>One rule per policy, so every rule is reached: each operator, each value kind, each path syntax.</summary>
    public static readonly (RuleTarget, string, RuleOperator, RuleValueKind, string?, bool)[] RuleSpecs =
    [
        (RuleTarget.Claim, "sub", RuleOperator.Eq, RuleValueKind.String, "alice", false),
        (RuleTarget.Claim, "scope", RuleOperator.Ne, RuleValueKind.String, "none", false),
        (RuleTarget.Claim, "exp", RuleOperator.Gt, RuleValueKind.Json, "1300000000", false),
        (RuleTarget.Claim, "nbf", RuleOperator.Le, RuleValueKind.Json, "1.7e9", false),
        (RuleTarget.Claim, "iat", RuleOperator.Ge, RuleValueKind.Variable, null, false),
        (RuleTarget.Claim, "age", RuleOperator.Lt, RuleValueKind.Json, "-0.5", false),
        (RuleTarget.Claim, ".aud", RuleOperator.Intersect, RuleValueKind.Json, "[\"api\",\"web\",1,null]", false),
        (RuleTarget.Claim, "aud", RuleOperator.NIntersect, RuleValueKind.Json, "[\"evil\",{\"a\":1}]", false),
        (RuleTarget.Claim, ".realm_access.roles", RuleOperator.In, RuleValueKind.Json,
            "{\"admin\":1,\"user\":[2]}", false),
        (RuleTarget.Claim, ".realm_access.roles[0]", RuleOperator.NIn, RuleValueKind.Json, "[\"banned\",true]", false),
        (RuleTarget.Claim, "resource_access\0api\0roles", RuleOperator.Eq, RuleValueKind.Json, "[\"read\",\"write\"]",
            false),
        (RuleTarget.Claim, "org::'dept.name'::id", RuleOperator.Lt, RuleValueKind.Json, "100", true),
        (RuleTarget.Claim, ".[\"x y\"][1]", RuleOperator.Eq, RuleValueKind.Variable, null, false),
        (RuleTarget.Claim, "groups", RuleOperator.In, RuleValueKind.Variable, null, false),
        (RuleTarget.Header, "kid", RuleOperator.Eq, RuleValueKind.String, "k1", false),
        (RuleTarget.Header, "typ", RuleOperator.In, RuleValueKind.Json, "[\"JWT\",\"at+jwt\"]", false),
        (RuleTarget.Header, ".x5t", RuleOperator.Ne, RuleValueKind.Variable, null, false),
    ];

    /// <summary>The header the payload targets pair with.</summary>
    public byte[] Header { get; } = "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}"u8.ToArray();

    /// <summary>The payload the header targets pair with.</summary>
    public byte[] Payload { get; } = Encoding.UTF8.GetBytes(
        "{\"iss\":\"joe\",\"sub\":\"alice\",\"exp\":1300819380,\"nbf\":1300000000,\"iat\":1300000000,"
        + "\"aud\":[\"api\",\"x\"],\"scope\":\"read write\",\"realm_access\":{\"roles\":[\"admin\",\"user\"]},"
        + "\"resource_access\":{\"api\":{\"roles\":[\"read\",\"write\"]}},\"org\":{\"dept.name\":{\"id\":7}},"
        + "\"x y\":[0,\"one\"],\"groups\":\"g1\",\"age\":-1}");

    public KeySet Rfc7515 { get; }

    public KeySet Rfc7520 { get; }

    public KeySet[] BothSets { get; }

    public VerificationPolicy Signed { get; }

    public VerificationPolicy Open { get; }

    public byte[]?[] OpenValues { get; }

    public VerificationPolicy Revoking { get; }

    /// <summary>A provider's policy (auth_jwt_provider) with typ, exp, max_lifetime and audience.</summary>
    public VerificationPolicy Provider { get; }

    public VerificationPolicy[] RulePolicies { get; }

    public byte[][] SignedTokens { get; }

    private static KeySet Keys(params string[] jwks)
    {
        KeySetResult result = KeySetLoader.Load(Encoding.UTF8.GetBytes("{\"keys\":[" + string.Join(",", jwks) + "]}"),
            KeySetFormat.Jwks);
        return result.KeySet ?? throw new InvalidOperationException("fixture keys refused: " + result.Error);
    }

    private static void Add(VerificationPolicy policy, RuleTarget target, string path, RuleOperator op,
        RuleValueKind kind, string? value) =>
        Check(policy.AddRule(target, Encoding.UTF8.GetBytes(path), op, kind,
            value is null ? ReadOnlySpan<byte>.Empty : Encoding.UTF8.GetBytes(value)));

    private static void Check(ConfigError error)
    {
        if (error != ConfigError.None)
        {
            throw new InvalidOperationException("fixture refused: " + error);
        }
    }
}
