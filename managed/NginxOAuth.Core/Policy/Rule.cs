using System;
using System.Text.Json;
using NginxOAuth.Core.Json;

namespace NginxOAuth.Core.Policy;

/// <summary>Where a rule looks (NOX_TARGET_*).</summary>
public enum RuleTarget
{
    Claim = 0,
    Header = 1,
}

/// <summary>Rule operators (NOX_OP_*).</summary>
public enum RuleOperator
{
    Eq = 0,
    Ne = 1,
    Gt = 2,
    Ge = 3,
    Lt = 4,
    Le = 5,
    Intersect = 6,
    NIntersect = 7,
    In = 8,
    NIn = 9,
}

/// <summary>How a rule's expected value is given (NOX_VALUE_*).</summary>
public enum RuleValueKind
{
    /// <summary>The raw bytes are the value of a JSON string.</summary>
    String = 0,
    /// <summary>JSON text, parsed when the rule is added.</summary>
    Json = 1,
    /// <summary>JSON text supplied per request (an nginx variable).</summary>
    Variable = 2,
}

/// <summary>The result of one rule.</summary>
internal enum RuleOutcome
{
    Pass,
    Fail,
    ValueInvalid,
}

/// <summary>One claim or header requirement. Immutable once added.</summary>
internal sealed class Rule : IDisposable
{
    public Rule(int index, RuleTarget target, ClaimPath path, RuleOperator op, RuleValueKind kind,
        JsonDocument? expected, long adjust)
    {
        Index = index;
        Target = target;
        Path = path;
        Operator = op;
        Kind = kind;
        Expected = expected;
        Adjust = adjust;
    }

    public int Index { get; }

    public RuleTarget Target { get; }

    public ClaimPath Path { get; }

    public RuleOperator Operator { get; }

    public RuleValueKind Kind { get; }

    /// <summary>Null for <see cref="RuleValueKind.Variable"/>.</summary>
    public JsonDocument? Expected { get; }

    /// <summary>Added to a numeric expected value by gt/ge/lt/le (leeway on exp and nbf).</summary>
    public long Adjust { get; }

    /// <summary>Whether <paramref name="expected"/> has a JSON type the operator can use.</summary>
    public static bool ExpectedTypeFits(RuleOperator op, JsonValueKind expected) => op switch
    {
        RuleOperator.Gt or RuleOperator.Ge or RuleOperator.Lt or RuleOperator.Le => expected == JsonValueKind.Number,
        RuleOperator.Intersect or RuleOperator.NIntersect => expected == JsonValueKind.Array,
        RuleOperator.In or RuleOperator.NIn => expected is JsonValueKind.Array or JsonValueKind.Object,
        _ => true,
    };

    /// <summary>
    /// Applies the operator to a claim that exists. A missing claim never
    /// reaches here: it fails every operator, negated ones included.
    /// </summary>
    public static bool Evaluate(RuleOperator op, JsonElement actual, JsonElement expected, long adjust)
    {
        if (!ExpectedTypeFits(op, expected.ValueKind))
        {
            return false; // an error is never negated into a pass
        }

        int order;
        switch (op)
        {
            case RuleOperator.Eq:
                return JsonValues.DeepEquals(actual, expected);
            case RuleOperator.Ne:
                return !JsonValues.DeepEquals(actual, expected);
            case RuleOperator.Gt:
                return JsonValues.TryCompareNumbers(actual, expected, adjust, out order) && order > 0;
            case RuleOperator.Ge:
                return JsonValues.TryCompareNumbers(actual, expected, adjust, out order) && order >= 0;
            case RuleOperator.Lt:
                return JsonValues.TryCompareNumbers(actual, expected, adjust, out order) && order < 0;
            case RuleOperator.Le:
                return JsonValues.TryCompareNumbers(actual, expected, adjust, out order) && order <= 0;
            case RuleOperator.Intersect:
                return Intersects(actual, expected);
            case RuleOperator.NIntersect:
                return !Intersects(actual, expected);
            case RuleOperator.In:
                return IsIn(actual, expected);
            case RuleOperator.NIn:
                return !IsIn(actual, expected);
            default:
                return false;
        }
    }

    public void Dispose() => Expected?.Dispose();

    private static bool Intersects(JsonElement actual, JsonElement expected)
    {
        if (actual.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement a in actual.EnumerateArray())
            {
                if (ContainsElement(expected, a))
                {
                    return true;
                }
            }
            return false;
        }
        return ContainsElement(expected, actual);
    }

    private static bool IsIn(JsonElement actual, JsonElement expected)
    {
        if (expected.ValueKind == JsonValueKind.Array)
        {
            return ContainsElement(expected, actual);
        }

        // The claim string is a member name of the expected object.
        if (actual.ValueKind != JsonValueKind.String)
        {
            return false;
        }
        byte[]? scratch = null;
        try
        {
            return expected.TryGetProperty(JsonValues.Utf8(actual, ref scratch), out _);
        }
        finally
        {
            if (scratch is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(scratch);
            }
        }
    }

    private static bool ContainsElement(JsonElement array, JsonElement value)
    {
        foreach (JsonElement e in array.EnumerateArray())
        {
            if (JsonValues.DeepEquals(value, e))
            {
                return true;
            }
        }
        return false;
    }
}
