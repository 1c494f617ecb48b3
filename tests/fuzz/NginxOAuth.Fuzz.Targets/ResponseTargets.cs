using System;
using System.Text;
using System.Text.Json;
using NginxOAuth.Core;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.OAuth2;
using NginxOAuth.Core.Policy;

namespace NginxOAuth.Fuzz;

/// <summary>
/// IdP answers, json= values and claim paths: what nox_introspect_parse,
/// nox_exchange_parse, nox_json_check, nox_json_get, nox_json_compact and
/// nox_policy_add_rule read.
/// </summary>
internal static class ResponseTargets
{
    private static readonly (PathKind Kind, byte[] Path)[] ResponsePaths =
    [
        (PathKind.Name, "sub"u8.ToArray()),
        (PathKind.Name, "scope"u8.ToArray()),
        (PathKind.Nested, ".realm_access.roles"u8.ToArray()),
        (PathKind.Names, "ext\0tenant"u8.ToArray()),
        (PathKind.Nested, "aud"u8.ToArray()),
    ];

    /// <summary>An introspection (RFC 7662) or exchange (RFC 8693) answer, and the variables read from it.</summary>
    public static void OAuth2Response(ReadOnlySpan<byte> input)
    {
        IntrospectionResult introspection = TokenResponses.ParseIntrospection(input, 1_700_000_000);
        Contract.Defined(introspection.Error);
        Contract.That(introspection.ExpiresIn >= 0, "negative seconds to exp");

        foreach (int capacity in (ReadOnlySpan<int>)[16, input.Length + 16])
        {
            var output = new byte[capacity];
            ExchangeResult exchange = TokenResponses.ParseExchange(input, output);
            Contract.Defined(exchange.Error);
            Contract.That(exchange.ExpiresIn >= -1, "expires_in below -1 (absent)");
            int total = exchange.TokenLength + Math.Max(exchange.TypeLength, 0) + Math.Max(exchange.IssuedTypeLength, 0);
            if (exchange.Error == ResponseError.None)
            {
                Contract.That(exchange.TokenLength > 0 && exchange.TypeLength >= -1 && exchange.IssuedTypeLength >= -1
                    && total <= capacity,
                    "exchange lengths beyond the output buffer");
            }
            else if (exchange.Error == ResponseError.BufferTooSmall)
            {
                Contract.That(exchange.TokenLength > 0 && total > capacity, "buffer too small, but it fits");
            }
        }

        foreach ((PathKind kind, byte[] path) in ResponsePaths)
        {
            Render(input, ClaimPath.Parse(path, kind, default, default));
        }
    }

    /// <summary>A json= value (configuration) or a $variable value (per request) of a rule.</summary>
    public static void Json(ReadOnlySpan<byte> input)
    {
        JsonShape shape = JsonGuard.Check(input);
        Contract.Defined(shape);
        bool refused = shape is JsonShape.Invalid or JsonShape.DuplicateMember;

        Compact(input);

        using (var scratch = new VerificationPolicy(false, false, 0))
        {
            for (RuleOperator op = RuleOperator.Eq; op <= RuleOperator.NIn; op++)
            {
                ConfigError error = scratch.AddRule(RuleTarget.Claim, "x"u8, op, RuleValueKind.Json, input);
                Contract.Defined(error);
                Contract.That(!refused || error == ConfigError.JsonInvalid, "add_rule took JSON nox_json_check refuses");
            }
            Contract.Defined(scratch.AddRevocation(RevocationKind.Sub, input));
        }

        // the same text as a $variable value at request time, for every operator
        ResponseFixtures f = ResponseFixtures.Instance;
        var values = new ArrayRuleValues([input.ToArray()]);
        foreach (VerificationPolicy policy in f.VariablePolicies)
        {
            VerifyResult r = JwtVerifier.CheckDecoded(policy, f.Header, f.Payload, JwtFixtures.Now, values);
            Contract.Defined(r.Error);
            Contract.That(!refused || input.IsEmpty || r.Error == TokenError.RuleValueInvalid,
                "a $variable value nox_json_check refuses was evaluated");
        }
    }

    /// <summary>A claim path in every syntax a directive accepts, resolved and rendered over a document.</summary>
    public static void ClaimPathTarget(ReadOnlySpan<byte> input)
    {
        ResponseFixtures f = ResponseFixtures.Instance;
        foreach (PathKind kind in (ReadOnlySpan<PathKind>)[PathKind.Name, PathKind.Nested, PathKind.Names])
        {
            Resolve(f, ClaimPath.Parse(input, kind, default, default));
        }
        Resolve(f, ClaimPath.Parse(input, PathKind.Nested, "::"u8, "'"u8));
        Resolve(f, ClaimPath.Parse(input, PathKind.Nested, "\0"u8, "\0\0"u8));
        Resolve(f, f.RulePaths.ParseRulePath(input));
    }

    private static void Resolve(ResponseFixtures f, ClaimPathResult parsed)
    {
        Contract.Defined(parsed.Error);
        Contract.That((parsed.Error == ConfigError.None) == (parsed.Path is not null),
            "a path comes with ConfigError.None and only then");
        if (parsed.Path is { } path)
        {
            Contract.That(path.Depth > 0, "an empty path");
            path.TryResolve(f.Document.RootElement, out _);
        }
        Render(f.DocumentBytes, parsed);
    }

    /// <summary>nox_json_get: the value into a buffer, again with the size asked for when it was too small.</summary>
    private static void Render(ReadOnlySpan<byte> json, ClaimPathResult path)
    {
        var small = new byte[8];
        JsonReadResult first = JsonRender.Get(json, path, small);
        Contract.Defined(first.Error);
        if (first.Error == JsonReadError.BufferTooSmall)
        {
            Contract.That(first.Length > small.Length, "buffer too small, but it fits");
            var exact = new byte[first.Length];
            JsonReadResult second = JsonRender.Get(json, path, exact);
            Contract.That(second.Error == JsonReadError.None && second.Length == first.Length,
                "the size asked for was not enough");
        }
        else if (first.Error == JsonReadError.None)
        {
            Contract.That(first.Length >= 0 && first.Length <= small.Length, "length beyond the buffer");
        }
    }

    /// <summary>nox_json_compact, with the same retry.</summary>
    private static void Compact(ReadOnlySpan<byte> json)
    {
        var small = new byte[8];
        JsonReadResult first = JsonRender.Compact(json, small);
        Contract.Defined(first.Error);
        if (first.Error == JsonReadError.BufferTooSmall)
        {
            var exact = new byte[first.Length];
            JsonReadResult second = JsonRender.Compact(json, exact);
            Contract.That(second.Error == JsonReadError.None && second.Length == first.Length,
                "the size asked for was not enough");
            Contract.That(JsonGuard.Check(exact) is not JsonShape.Invalid, "compact JSON does not parse");
        }
    }
}

internal sealed class ResponseFixtures
{
    private static ResponseFixtures? _instance;

    public static ResponseFixtures Instance => _instance ??= new ResponseFixtures();

    private ResponseFixtures()
    {
        DocumentBytes = Encoding.UTF8.GetBytes(
            "{\"sub\":\"alice\",\"a\":{\"b\":[1,{\"c\":\"d\"}],\"x.y\":true},\"org\":{\"dept.name\":{\"id\":7}},"
            + "\"x y\":[0,\"one\",[2,3]],\"\":\"empty\",\"caf\u00e9\":\"\\u00e9\",\"n\":null,\"f\":1.5e3,"
            + "\"realm_access\":{\"roles\":[\"admin\",\"user\"]},\"o\":{}}");
        Document = JsonDocument.Parse(DocumentBytes);

        RulePaths = new VerificationPolicy(false, false, 0);
        RulePaths.SetNested("."u8, "\""u8);

        var policies = new System.Collections.Generic.List<VerificationPolicy>();
        foreach (string path in (string[])["sub", ".aud", "exp", ".realm_access"])
        {
            for (RuleOperator op = RuleOperator.Eq; op <= RuleOperator.NIn; op++)
            {
                var policy = new VerificationPolicy(false, false, 3);
                if (policy.AddRule(RuleTarget.Claim, Encoding.UTF8.GetBytes(path), op, RuleValueKind.Variable,
                        default) != ConfigError.None)
                {
                    throw new InvalidOperationException("fixture rule refused");
                }
                policies.Add(policy);
            }
        }
        VariablePolicies = policies.ToArray();
    }

    public byte[] DocumentBytes { get; }

    public JsonDocument Document { get; }

    /// <summary>A policy after nox_policy_set_nested, for ParseRulePath.</summary>
    public VerificationPolicy RulePaths { get; }

    /// <summary>One $variable rule per policy: each operator on a string, an array, a number and an object claim.</summary>
    public VerificationPolicy[] VariablePolicies { get; }

    public byte[] Header { get; } = "{\"alg\":\"ES256\"}"u8.ToArray();

    public byte[] Payload { get; } = Encoding.UTF8.GetBytes(
        "{\"sub\":\"alice\",\"aud\":[\"api\",2,null,{\"k\":[]}],\"exp\":1300819380.5,"
        + "\"realm_access\":{\"roles\":[\"admin\"]}}");
}
