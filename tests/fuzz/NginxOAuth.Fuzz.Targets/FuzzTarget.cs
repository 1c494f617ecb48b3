using System;
using System.Collections.Generic;

namespace NginxOAuth.Fuzz;

/// <summary>Runs one input through a target; returns normally for every expected outcome.</summary>
public delegate void TargetBody(ReadOnlySpan<byte> input);

/// <summary>
/// One fuzz target: a parser of untrusted input, driven through the core's
/// public API exactly as the export layer drives it. The core returns
/// results, not exceptions, so any exception leaving <see cref="Run"/> is a
/// crash: one thrown by the core, or a <see cref="ContractViolation"/> when a
/// result breaks its documented contract (lengths beyond the buffer, an
/// undefined code, a token with CR/LF accepted, ...).
/// </summary>
public sealed class FuzzTarget
{
    public FuzzTarget(string name, string description, TargetBody body)
    {
        Name = name;
        Description = description;
        _body = body;
    }

    private readonly TargetBody _body;

    public string Name { get; }

    public string Description { get; }

    public void Run(ReadOnlySpan<byte> input) => _body(input);

    public override string ToString() => Name;
}

/// <summary>A result that breaks the contract its type documents.</summary>
public sealed class ContractViolation : Exception
{
    public ContractViolation(string message)
        : base(message)
    {
    }
}

/// <summary>Every target, by name (the names build.sh fuzz and the regression folders use).</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new("jws", "compact JWS: JwtVerifier.Verify (signature on, and off with rules) and VerifySignature",
            JwtTargets.Jws),
        new("jwe", "compact JWE: JweDecryptor.Decrypt, JwtVerifier.Verify under auth_jwt_type encrypted and nested",
            JweTargets.Jwe),
        new("jwt-claims", "decoded header and payload: JwtVerifier.CheckDecoded, time claims, revocation, every rule operator",
            JwtTargets.Claims),
        new("keyset", "JWKS and keyval documents: KeySetLoader.Load, then the keys verify the RFC vectors",
            JwtTargets.KeySet),
        new("oauth2-response", "introspection and exchange answers: TokenResponses, JsonRender.Get of their members",
            ResponseTargets.OAuth2Response),
        new("json", "json= and $variable rule values: JsonGuard.Check, JsonRender.Compact, AddRule, rule evaluation",
            ResponseTargets.Json),
        new("claim-path", "claim paths: ClaimPath.Parse (name, nested, jq, multi-name), resolve and render",
            ResponseTargets.ClaimPathTarget),
        new("sts-json", "STS OAuth JSON answers (otx, ropc, cc): StsExchange.ReadResponse",
            StsTargets.JsonAnswer),
        new("sts-wstrust", "STS WS-Trust SOAP answers (RSTR, Fault): StsExchange.ReadResponse",
            StsTargets.SoapAnswer),
        new("sts-claims", "STS claims projection: ClaimProjection.Parse and Write",
            StsTargets.Projection),
        new("sts-request", "STS source tokens: StsExchange.CreateRequest for wstrust, otx, ropc and jwt (minting)",
            StsTargets.Request),
    ];

    /// <summary>The target called <paramref name="name"/>, or null.</summary>
    public static FuzzTarget? Find(string name)
    {
        foreach (FuzzTarget target in All)
        {
            if (target.Name == name)
            {
                return target;
            }
        }
        return null;
    }
}

/// <summary>Contract checks shared by the targets.</summary>
internal static class Contract
{
    public static void That(bool condition, string what)
    {
        if (!condition)
        {
            throw new ContractViolation(what);
        }
    }

    public static void Defined<TEnum>(TEnum value)
        where TEnum : struct, Enum
    {
        if (!Enum.IsDefined(value))
        {
            throw new ContractViolation($"undefined {typeof(TEnum).Name} {value}");
        }
    }
}
