using System;
using System.Collections.Generic;
using System.Text;

namespace NginxOAuth.Core.OAuth2;

/// <summary>
/// application/x-www-form-urlencoded bodies (the WHATWG URL standard's
/// serializer, as RFC 6749 appendix B asks): unreserved bytes
/// (ALPHA / DIGIT / "-" / "." / "_" / "~") as they are, space as "+",
/// every other byte %XX. Also parses such strings (the <c>params</c> setting).
/// </summary>
public sealed class FormBody
{
    private readonly List<byte> _bytes = new(256);

    public int Length => _bytes.Count;

    public void Add(string name, string value) => Add(Encoding.UTF8.GetBytes(name), Encoding.UTF8.GetBytes(value));

    public void Add(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        if (_bytes.Count > 0)
        {
            _bytes.Add((byte)'&');
        }
        Append(_bytes, name);
        _bytes.Add((byte)'=');
        Append(_bytes, value);
    }

    public byte[] ToArray() => _bytes.ToArray();

    /// <summary>The form encoding of one value, as text (also used inside Basic credentials).</summary>
    public static string Encode(string value)
    {
        var bytes = new List<byte>(value.Length + 8);
        Append(bytes, Encoding.UTF8.GetBytes(value));
        return Encoding.ASCII.GetString(bytes.ToArray());
    }

    private static void Append(List<byte> target, ReadOnlySpan<byte> value)
    {
        foreach (byte b in value)
        {
            if (IsUnreserved(b))
            {
                target.Add(b);
            }
            else if (b == (byte)' ')
            {
                target.Add((byte)'+');
            }
            else
            {
                target.Add((byte)'%');
                target.Add((byte)"0123456789ABCDEF"[b >> 4]);
                target.Add((byte)"0123456789ABCDEF"[b & 0xF]);
            }
        }
    }

    private static bool IsUnreserved(byte b) =>
        (b >= (byte)'A' && b <= (byte)'Z') || (b >= (byte)'a' && b <= (byte)'z')
        || (b >= (byte)'0' && b <= (byte)'9') || b is (byte)'-' or (byte)'.' or (byte)'_' or (byte)'~';

    /// <summary>
    /// Parses "a=1&amp;b=x+y&amp;c=%2F": names and values percent- and
    /// plus-decoded, in order, repeats kept. Empty segments ("a=1&amp;&amp;b=2")
    /// are skipped; a segment without "=" has an empty value. False on an
    /// empty name or a bad %-escape.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> form, out List<KeyValuePair<byte[], byte[]>> pairs)
    {
        pairs = new List<KeyValuePair<byte[], byte[]>>();
        foreach (Range r in form.Split((byte)'&'))
        {
            ReadOnlySpan<byte> segment = form[r];
            if (segment.IsEmpty)
            {
                continue;
            }
            int eq = segment.IndexOf((byte)'=');
            ReadOnlySpan<byte> name = eq < 0 ? segment : segment[..eq];
            ReadOnlySpan<byte> value = eq < 0 ? ReadOnlySpan<byte>.Empty : segment[(eq + 1)..];
            if (name.IsEmpty || !TryDecode(name, out byte[] n) || !TryDecode(value, out byte[] v))
            {
                return false;
            }
            pairs.Add(new KeyValuePair<byte[], byte[]>(n, v));
        }
        return true;
    }

    private static bool TryDecode(ReadOnlySpan<byte> text, out byte[] decoded)
    {
        var output = new byte[text.Length];
        int at = 0;
        for (int i = 0; i < text.Length; i++)
        {
            byte b = text[i];
            if (b == (byte)'+')
            {
                output[at++] = (byte)' ';
            }
            else if (b == (byte)'%')
            {
                if (i + 2 >= text.Length || Hex(text[i + 1]) is not (>= 0 and var hi) || Hex(text[i + 2]) is not (>= 0 and var lo))
                {
                    decoded = Array.Empty<byte>();
                    return false;
                }
                output[at++] = (byte)((hi << 4) | lo);
                i += 2;
            }
            else
            {
                output[at++] = b;
            }
        }
        decoded = output.AsSpan(0, at).ToArray();
        return true;
    }

    private static int Hex(byte b) => b switch
    {
        >= (byte)'0' and <= (byte)'9' => b - '0',
        >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
        _ => -1,
    };
}
