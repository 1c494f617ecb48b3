using System;
using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace NginxOAuth.Core.Json;

/// <summary>
/// JSON value semantics shared by the rule operators: deep equality (an
/// integer never equals a real, strings compare byte by byte after
/// unescaping), numeric ordering and string access without allocating.
/// </summary>
public static class JsonValues
{
    public static bool DeepEquals(JsonElement a, JsonElement b)
    {
        JsonValueKind kind = a.ValueKind;
        if (kind != b.ValueKind)
        {
            return false;
        }

        switch (kind)
        {
            case JsonValueKind.String:
                return StringEquals(a, b);
            case JsonValueKind.Number:
                return NumberEquals(a, b);
            case JsonValueKind.Array:
                return ArrayEquals(a, b);
            case JsonValueKind.Object:
                return ObjectEquals(a, b);
            default:
                return true; // true, false, null: the kind is the value
        }
    }

    /// <summary>True when the JSON number text has no fraction and no exponent.</summary>
    public static bool IsInteger(JsonElement number) =>
        JsonMarshal.GetRawUtf8Value(number).IndexOfAny((byte)'.', (byte)'e', (byte)'E') < 0;

    /// <summary>
    /// Compares two numbers (<paramref name="adjust"/> is added to
    /// <paramref name="b"/> first). False when either is not a number.
    /// </summary>
    public static bool TryCompareNumbers(JsonElement a, JsonElement b, long adjust, out int order)
    {
        order = 0;
        if (a.ValueKind != JsonValueKind.Number || b.ValueKind != JsonValueKind.Number)
        {
            return false;
        }

        if (a.TryGetDecimal(out decimal da) && b.TryGetDecimal(out decimal db))
        {
            order = da.CompareTo(db + adjust);
            return true;
        }

        if (a.TryGetDouble(out double fa) && b.TryGetDouble(out double fb)
            && double.IsFinite(fa) && double.IsFinite(fb))
        {
            order = fa.CompareTo(fb + adjust);
            return true;
        }

        return false;
    }

    /// <summary>True when <paramref name="s"/> is a string whose unescaped bytes equal <paramref name="utf8"/>.</summary>
    public static bool StringEquals(JsonElement s, ReadOnlySpan<byte> utf8) =>
        s.ValueKind == JsonValueKind.String && s.ValueEquals(utf8);

    /// <summary>
    /// The unescaped UTF-8 of a string element, in <paramref name="scratch"/>
    /// when it had escapes (the caller returns the rented array), else a view
    /// of the document.
    /// </summary>
    internal static ReadOnlySpan<byte> Utf8(JsonElement s, ref byte[]? scratch)
    {
        ReadOnlySpan<byte> raw = JsonMarshal.GetRawUtf8Value(s);
        ReadOnlySpan<byte> inner = raw.Slice(1, raw.Length - 2);
        if (inner.IndexOf((byte)'\\') < 0)
        {
            return inner;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(inner.Length);
        if (scratch is not null)
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
        scratch = buffer;
        var reader = new Utf8JsonReader(raw);
        reader.Read();
        int length = reader.CopyString(buffer);
        return buffer.AsSpan(0, length);
    }

    private static bool StringEquals(JsonElement a, JsonElement b)
    {
        byte[]? scratch = null;
        try
        {
            return b.ValueEquals(Utf8(a, ref scratch));
        }
        finally
        {
            if (scratch is not null)
            {
                ArrayPool<byte>.Shared.Return(scratch);
            }
        }
    }

    private static bool NumberEquals(JsonElement a, JsonElement b)
    {
        bool integer = IsInteger(a);
        if (integer != IsInteger(b))
        {
            return false; // 1 != 1.0, as in the anchor's comparison rules
        }

        if (integer)
        {
            if (a.TryGetInt64(out long la) && b.TryGetInt64(out long lb))
            {
                return la == lb;
            }
            // Beyond 64 bits: JSON integers have no leading zeros, so equal
            // text is equal value (-0 was caught above as 0).
            return JsonMarshal.GetRawUtf8Value(a).SequenceEqual(JsonMarshal.GetRawUtf8Value(b));
        }

        if (a.TryGetDecimal(out decimal da) && b.TryGetDecimal(out decimal db))
        {
            return da == db;
        }

        return a.TryGetDouble(out double fa) && b.TryGetDouble(out double fb) && fa == fb;
    }

    private static bool ArrayEquals(JsonElement a, JsonElement b)
    {
        int n = a.GetArrayLength();
        if (n != b.GetArrayLength())
        {
            return false;
        }

        for (int i = 0; i < n; i++)
        {
            if (!DeepEquals(a[i], b[i]))
            {
                return false;
            }
        }
        return true;
    }

    private static bool ObjectEquals(JsonElement a, JsonElement b)
    {
        int countA = 0;
        foreach (JsonProperty _ in a.EnumerateObject())
        {
            countA++;
        }

        int countB = 0;
        foreach (JsonProperty _ in b.EnumerateObject())
        {
            countB++;
        }

        if (countA != countB)
        {
            return false;
        }

        // Configuration-sized objects only (tokens never reach here unless a
        // rule compares objects), so the member name string is acceptable.
        foreach (JsonProperty p in a.EnumerateObject())
        {
            if (!b.TryGetProperty(p.Name, out JsonElement other) || !DeepEquals(p.Value, other))
            {
                return false;
            }
        }
        return true;
    }
}
