using System;
using System.Buffers;
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
    // a growing byte array: the body is built on every IdP call (an
    // introspection without a cache builds one per request), so bytes are
    // written in place rather than added one by one to a List<byte>
    private byte[] _bytes;
    private int _length;

    public FormBody()
        : this(256)
    {
    }

    /// <summary>A body with room for <paramref name="capacity"/> bytes before it grows.</summary>
    public FormBody(int capacity)
    {
        _bytes = new byte[Math.Max(capacity, 16)];
    }

    private static readonly SearchValues<byte> Unreserved =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"u8);

    public int Length => _length;

    /// <summary>The bytes it holds before it grows.</summary>
    public int Capacity => _bytes.Length;

    /// <summary>Empties the body, keeping its buffer (a body reused call after call).</summary>
    public void Clear() => _length = 0;

    public void Add(string name, string value)
    {
        Separator();
        AppendText(name);
        Put((byte)'=');
        AppendText(value);
    }

    public void Add(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        Separator();
        Append(name);
        Put((byte)'=');
        Append(value);
    }

    /// <summary>The body as written so far (valid until the next Add).</summary>
    public ReadOnlySpan<byte> Written => _bytes.AsSpan(0, _length);

    /// <summary>The form encoding of one value, as text (also used inside Basic credentials).</summary>
    public static string Encode(string value)
    {
        var form = new FormBody();
        form.AppendText(value);
        return Encoding.ASCII.GetString(form._bytes, 0, form._length);
    }

    private void Separator()
    {
        if (_length > 0)
        {
            Put((byte)'&');
        }
    }

    private void Put(byte b)
    {
        Reserve(1);
        _bytes[_length++] = b;
    }

    private void Reserve(long more)
    {
        long needed = _length + more;
        if (needed <= _bytes.Length)
        {
            return;
        }
        if (needed > Array.MaxLength)
        {
            throw new OutOfMemoryException();
        }
        Array.Resize(ref _bytes, (int)Math.Min(Array.MaxLength, Math.Max(needed, 2L * _bytes.Length)));
    }

    private void AppendText(string value)
    {
        if (value.Length <= 256)
        {
            Span<byte> utf8 = stackalloc byte[3 * 256];
            Append(utf8[..Encoding.UTF8.GetBytes(value, utf8)]);
        }
        else
        {
            Append(Encoding.UTF8.GetBytes(value));
        }
    }

    private void Append(ReadOnlySpan<byte> value)
    {
        Reserve(3L * value.Length);
        byte[] target = _bytes;
        int at = _length;
        while (!value.IsEmpty)
        {
            // a run of unreserved bytes (a JWT is one, but for its dots) is copied whole
            int run = value.IndexOfAnyExcept(Unreserved);
            if (run < 0)
            {
                run = value.Length;
            }
            value[..run].CopyTo(target.AsSpan(at));
            at += run;
            if (run == value.Length)
            {
                break;
            }
            byte b = value[run];
            value = value[(run + 1)..];
            if (b == (byte)' ')
            {
                target[at++] = (byte)'+';
            }
            else
            {
                target[at++] = (byte)'%';
                target[at++] = (byte)"0123456789ABCDEF"[b >> 4];
                target[at++] = (byte)"0123456789ABCDEF"[b & 0xF];
            }
        }
        _length = at;
    }

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
