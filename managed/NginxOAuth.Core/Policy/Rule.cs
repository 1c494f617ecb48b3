using System;
using System.Text.Json;
using System.Text.RegularExpressions;
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
    /// <summary>The claim is a string the expected regular expression matches.</summary>
    Match = 10,
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
    /// <summary>A match operator ran out of its time budget.</summary>
    MatchLimit,
}

/// <summary>What an operator says before negation: an error is never negated into a pass.</summary>
internal enum Truth
{
    True,
    False,
    Error,
    Limit,
}

/// <summary>One claim or header requirement. Immutable once added.</summary>
internal sealed class Rule : IDisposable
{
    public Rule(int index, RuleTarget target, ClaimPath path, RuleOperator op, bool negate, RuleValueKind kind,
        JsonDocument? expected, Regex? pattern, long adjust)
    {
        Index = index;
        Target = target;
        Path = path;
        Operator = op;
        Negate = negate;
        Kind = kind;
        Expected = expected;
        Pattern = pattern;
        Adjust = adjust;
    }

    public int Index { get; }

    public RuleTarget Target { get; }

    public ClaimPath Path { get; }

    /// <summary>The base operator: ne, nintersect and nin are stored as negated eq, intersect and in.</summary>
    public RuleOperator Operator { get; }

    /// <summary>The "!" prefix: a true answer fails and a false one passes; an error still fails.</summary>
    public bool Negate { get; }

    public RuleValueKind Kind { get; }

    /// <summary>Null for <see cref="RuleValueKind.Variable"/>.</summary>
    public JsonDocument? Expected { get; }

    /// <summary>The compiled pattern of a match rule with a fixed value.</summary>
    public Regex? Pattern { get; }

    /// <summary>Added to a numeric expected value by gt/ge/lt/le (leeway on exp and nbf).</summary>
    public long Adjust { get; }

    /// <summary>Whether <paramref name="expected"/> has a JSON type the operator can use.</summary>
    public static bool ExpectedTypeFits(RuleOperator op, JsonValueKind expected) => op switch
    {
        RuleOperator.Gt or RuleOperator.Ge or RuleOperator.Lt or RuleOperator.Le => expected == JsonValueKind.Number,
        RuleOperator.Intersect or RuleOperator.NIntersect => expected == JsonValueKind.Array,
        RuleOperator.In or RuleOperator.NIn => expected is JsonValueKind.Array or JsonValueKind.Object,
        RuleOperator.Match => expected == JsonValueKind.String,
        _ => true,
    };

    /// <summary>Splits the negated spellings into their base operator and a negation.</summary>
    public static RuleOperator Base(RuleOperator op, ref bool negate)
    {
        switch (op)
        {
            case RuleOperator.Ne:
                negate = !negate;
                return RuleOperator.Eq;
            case RuleOperator.NIntersect:
                negate = !negate;
                return RuleOperator.Intersect;
            case RuleOperator.NIn:
                negate = !negate;
                return RuleOperator.In;
            default:
                return op;
        }
    }

    /// <summary>
    /// Applies a base operator to a claim that exists. A missing claim never
    /// reaches here: it fails every operator, negated ones included. Wrong
    /// types and patterns that do not compile are errors, which negation
    /// does not turn into a pass.
    /// </summary>
    public static Truth Evaluate(RuleOperator op, JsonElement actual, JsonElement expected, long adjust,
        Regex? pattern)
    {
        if (!ExpectedTypeFits(op, expected.ValueKind))
        {
            return Truth.Error;
        }

        int order;
        switch (op)
        {
            case RuleOperator.Eq:
                return Of(JsonValues.DeepEquals(actual, expected));
            case RuleOperator.Gt:
                return JsonValues.TryCompareNumbers(actual, expected, adjust, out order) ? Of(order > 0) : Truth.Error;
            case RuleOperator.Ge:
                return JsonValues.TryCompareNumbers(actual, expected, adjust, out order) ? Of(order >= 0) : Truth.Error;
            case RuleOperator.Lt:
                return JsonValues.TryCompareNumbers(actual, expected, adjust, out order) ? Of(order < 0) : Truth.Error;
            case RuleOperator.Le:
                return JsonValues.TryCompareNumbers(actual, expected, adjust, out order) ? Of(order <= 0) : Truth.Error;
            case RuleOperator.Intersect:
                return Of(Intersects(actual, expected));
            case RuleOperator.In:
                return Of(IsIn(actual, expected));
            case RuleOperator.Match:
                return Matches(actual, expected, pattern);
            default:
                return Truth.Error;
        }
    }

    private static Truth Of(bool value) => value ? Truth.True : Truth.False;

    private static Truth Matches(JsonElement actual, JsonElement expected, Regex? pattern)
    {
        if (actual.ValueKind != JsonValueKind.String)
        {
            return Truth.Error;
        }
        if (pattern is null && RulePattern.Get(expected.GetString()!, out pattern) != ConfigError.None)
        {
            return Truth.Error;
        }
        string text;
        try
        {
            text = actual.GetString()!;
        }
        catch (InvalidOperationException)
        {
            return Truth.Error; // a lone surrogate escape
        }
        try
        {
            return Of(pattern!.IsMatch(text));
        }
        catch (RegexMatchTimeoutException)
        {
            return Truth.Limit;
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
