using System;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace NginxOAuth.Core.Json;

/// <summary>How a JSON value reads as a count of seconds.</summary>
public enum NumericDateStatus
{
    Ok = 0,

    /// <summary>Not a JSON number (a string, null, true, an object ...).</summary>
    NotANumber = 1,

    /// <summary>A number whose whole seconds do not fit a 64-bit signed count (1e999, -1e999, 2^63).</summary>
    OutOfRange = 2,
}

/// <summary>
/// The one reading of a time value from JSON: JWT exp and nbf, an
/// introspection answer's exp, a token answer's expires_in, and the
/// verified-token cache's TTL. RFC 7519 NumericDate allows any JSON number,
/// so the integer, fraction and exponent forms ("1796158291",
/// "1796158291.5", "17961582915e-1") all read as the same value, rounded
/// down to whole seconds (an expiry is never read later than it is). A
/// number whose whole seconds fall outside [-2^63, 2^63 - 1] is out of
/// range: a time claim no 64-bit clock can compare, never "forever".
/// Exact on the digits: no double or decimal rounding, whatever the length.
/// </summary>
public static class NumericDate
{
    /// <summary>Exponents beyond this move every non-zero digit out of range (or below one second) anyway.</summary>
    private const long ExponentCap = 100_000_000;

    /// <summary>Reads the text of a JSON number (as Utf8JsonReader validated it) as whole seconds, rounded down.</summary>
    public static NumericDateStatus Read(ReadOnlySpan<byte> number, out long seconds)
    {
        seconds = 0;
        int i = 0;
        int n = number.Length;
        bool negative = i < n && number[i] == (byte)'-';
        if (negative)
        {
            i++;
        }

        int intStart = i;
        while (i < n && IsDigit(number[i]))
        {
            i++;
        }
        int intLength = i - intStart;
        if (intLength == 0)
        {
            return NumericDateStatus.NotANumber;
        }

        int fracStart = i;
        int fracLength = 0;
        if (i < n && number[i] == (byte)'.')
        {
            fracStart = ++i;
            while (i < n && IsDigit(number[i]))
            {
                i++;
            }
            fracLength = i - fracStart;
            if (fracLength == 0)
            {
                return NumericDateStatus.NotANumber;
            }
        }

        long exponent = 0;
        if (i < n && (number[i] == (byte)'e' || number[i] == (byte)'E'))
        {
            i++;
            bool negativeExponent = false;
            if (i < n && (number[i] == (byte)'+' || number[i] == (byte)'-'))
            {
                negativeExponent = number[i] == (byte)'-';
                i++;
            }
            int expStart = i;
            while (i < n && IsDigit(number[i]))
            {
                if (exponent < ExponentCap)
                {
                    exponent = exponent * 10 + (number[i] - '0');
                }
                i++;
            }
            if (i == expStart)
            {
                return NumericDateStatus.NotANumber;
            }
            if (negativeExponent)
            {
                exponent = -exponent;
            }
        }

        if (i != n)
        {
            return NumericDateStatus.NotANumber;
        }

        // The digits D = integer digits then fraction digits; the value is
        // D with the decimal point after (intLength + exponent) of them.
        int digits = intLength + fracLength;
        int first = 0;
        while (first < digits && Digit(number, intStart, intLength, fracStart, first) == 0)
        {
            first++;
        }
        if (first == digits)
        {
            return NumericDateStatus.Ok; // zero, also "-0.0e5"
        }

        long point = intLength + exponent;
        ulong whole = 0;
        if (point - first > 19)
        {
            return NumericDateStatus.OutOfRange; // at least 10^19 > 2^63
        }
        for (long k = first; k < point; k++)
        {
            whole = whole * 10 + (k < digits ? (ulong)Digit(number, intStart, intLength, fracStart, (int)k) : 0);
        }

        bool fraction = false;
        for (long k = Math.Max(point, first); k < digits; k++)
        {
            if (Digit(number, intStart, intLength, fracStart, (int)k) != 0)
            {
                fraction = true;
                break;
            }
        }

        if (!negative)
        {
            if (whole > long.MaxValue)
            {
                return NumericDateStatus.OutOfRange;
            }
            seconds = (long)whole;
            return NumericDateStatus.Ok;
        }

        // rounding down a negative number with a fraction moves it away from zero
        ulong magnitude = whole + (fraction ? 1UL : 0UL);
        if (magnitude > (ulong)long.MaxValue + 1)
        {
            return NumericDateStatus.OutOfRange;
        }
        seconds = magnitude == (ulong)long.MaxValue + 1 ? long.MinValue : -(long)magnitude;
        return NumericDateStatus.Ok;
    }

    /// <summary>A member value located by <see cref="JsonGuard"/>.</summary>
    public static NumericDateStatus Read(ReadOnlySpan<byte> json, MemberValue value, out long seconds)
    {
        seconds = 0;
        return value.Type == JsonTokenType.Number
            ? Read(json.Slice(value.Start, value.Length), out seconds)
            : NumericDateStatus.NotANumber;
    }

    /// <summary>A value of a parsed document.</summary>
    public static NumericDateStatus Read(JsonElement value, out long seconds)
    {
        seconds = 0;
        return value.ValueKind == JsonValueKind.Number
            ? Read(JsonMarshal.GetRawUtf8Value(value), out seconds)
            : NumericDateStatus.NotANumber;
    }

    /// <summary>
    /// Reads the top-level member <paramref name="name"/> of a JSON object:
    /// false when the document is not a well-formed object or has no such
    /// member (status NotANumber then), else the member's reading.
    /// </summary>
    public static bool TryReadMember(ReadOnlySpan<byte> json, ReadOnlySpan<byte> name, out NumericDateStatus status,
        out long seconds)
    {
        status = NumericDateStatus.NotANumber;
        seconds = 0;
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = Limits.MaxJsonDepth });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                bool match = reader.ValueTextEquals(name);
                if (!reader.Read())
                {
                    return false;
                }
                if (match)
                {
                    status = reader.TokenType == JsonTokenType.Number
                        ? Read(reader.ValueSpan, out seconds)
                        : NumericDateStatus.NotANumber;
                    return true;
                }
                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }
        return false;
    }

    private static bool IsDigit(byte b) => (uint)(b - '0') <= 9;

    private static int Digit(ReadOnlySpan<byte> number, int intStart, int intLength, int fracStart, int k) =>
        (k < intLength ? number[intStart + k] : number[fracStart + k - intLength]) - '0';
}
