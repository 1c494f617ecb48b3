using System;
using System.Collections.Generic;
using System.Text.Json;

namespace NginxOAuth.Core.Json;

/// <summary>Claim path syntaxes (NOX_PATH_*).</summary>
public enum PathKind
{
    /// <summary>One literal member name.</summary>
    Name = 0,
    /// <summary>Delimiter/quote path, or a JQ-like path when it starts with '.' or '['.</summary>
    Nested = 1,
    /// <summary>Literal member names separated by 0x00 (NGINX Plus multi-name form).</summary>
    Names = 2,
}

public readonly struct ClaimPathResult
{
    public ClaimPathResult(ClaimPath path)
    {
        Path = path;
        Error = ConfigError.None;
    }

    public ClaimPathResult(ConfigError error)
    {
        Path = null;
        Error = error;
    }

    public ClaimPath? Path { get; }

    public ConfigError Error { get; }
}

/// <summary>
/// A parsed path into a JSON document: member names and array indexes,
/// resolved from the root. Parsed once (at configuration), resolved per
/// request without allocating.
/// </summary>
public sealed class ClaimPath
{
    public static readonly byte[] DefaultDelimiter = "."u8.ToArray();
    public static readonly byte[] DefaultQuote = "\""u8.ToArray();

    private readonly Segment[] _segments;

    private ClaimPath(Segment[] segments)
    {
        _segments = segments;
    }

    public int Depth => _segments.Length;

    /// <summary>
    /// Parses a path. With <see cref="PathKind.Nested"/> an empty
    /// <paramref name="delimiter"/> or <paramref name="quote"/> means the
    /// default "." or "\"".
    /// </summary>
    public static ClaimPathResult Parse(ReadOnlySpan<byte> path, PathKind kind,
        ReadOnlySpan<byte> delimiter, ReadOnlySpan<byte> quote)
    {
        if (path.IsEmpty)
        {
            return new ClaimPathResult(ConfigError.PathInvalid);
        }

        switch (kind)
        {
            case PathKind.Name:
                return new ClaimPathResult(new ClaimPath([Segment.Member(path.ToArray())]));
            case PathKind.Names:
                return ParseNames(path);
            case PathKind.Nested:
                if (IsJqLike(path))
                {
                    return ParseJq(path);
                }
                return ParseDelimited(path,
                    delimiter.IsEmpty ? DefaultDelimiter : delimiter,
                    quote.IsEmpty ? DefaultQuote : quote);
            default:
                return new ClaimPathResult(ConfigError.PathInvalid);
        }
    }

    /// <summary>A JQ-like path starts with '.' or '['.</summary>
    public static bool IsJqLike(ReadOnlySpan<byte> path) =>
        !path.IsEmpty && (path[0] == (byte)'.' || path[0] == (byte)'[');

    /// <summary>True when the path is the single top-level member <paramref name="name"/>.</summary>
    public bool IsTopLevel(ReadOnlySpan<byte> name) =>
        _segments.Length == 1 && _segments[0].Name is { } n && n.AsSpan().SequenceEqual(name);

    public bool TryResolve(JsonElement root, out JsonElement value)
    {
        JsonElement current = root;
        foreach (Segment segment in _segments)
        {
            if (segment.Name is { } name)
            {
                if (current.ValueKind != JsonValueKind.Object || !current.TryGetProperty(name, out current))
                {
                    value = default;
                    return false;
                }
            }
            else
            {
                if (current.ValueKind != JsonValueKind.Array || segment.Index >= current.GetArrayLength())
                {
                    value = default;
                    return false;
                }
                current = current[segment.Index];
            }
        }

        value = current;
        return true;
    }

    private static ClaimPathResult ParseNames(ReadOnlySpan<byte> path)
    {
        var segments = new List<Segment>();
        foreach (Range r in path.Split((byte)0))
        {
            ReadOnlySpan<byte> name = path[r];
            if (name.IsEmpty)
            {
                return new ClaimPathResult(ConfigError.PathInvalid);
            }
            segments.Add(Segment.Member(name.ToArray()));
        }
        return new ClaimPathResult(new ClaimPath(segments.ToArray()));
    }

    private static ClaimPathResult ParseDelimited(ReadOnlySpan<byte> path,
        ReadOnlySpan<byte> delimiter, ReadOnlySpan<byte> quote)
    {
        var segments = new List<Segment>();
        int pos = 0;
        while (true)
        {
            ReadOnlySpan<byte> rest = path[pos..];
            ReadOnlySpan<byte> name;
            if (rest.StartsWith(quote))
            {
                int close = rest[quote.Length..].IndexOf(quote);
                if (close < 0)
                {
                    return new ClaimPathResult(ConfigError.PathInvalid);
                }
                name = rest.Slice(quote.Length, close);
                pos += quote.Length + close + quote.Length;
                if (pos < path.Length && !path[pos..].StartsWith(delimiter))
                {
                    return new ClaimPathResult(ConfigError.PathInvalid);
                }
            }
            else
            {
                int end = rest.IndexOf(delimiter);
                name = end < 0 ? rest : rest[..end];
                pos += name.Length;
            }

            if (name.IsEmpty)
            {
                return new ClaimPathResult(ConfigError.PathInvalid);
            }
            segments.Add(Segment.Member(name.ToArray()));

            if (pos == path.Length)
            {
                break;
            }
            pos += delimiter.Length;
            if (pos >= path.Length)
            {
                return new ClaimPathResult(ConfigError.PathInvalid); // trailing delimiter
            }
        }
        return new ClaimPathResult(new ClaimPath(segments.ToArray()));
    }

    // .a.b  ."dotted.key"  [0]  .m[0][1]  .["key"]  (a subset of jq's path syntax)
    private static ClaimPathResult ParseJq(ReadOnlySpan<byte> path)
    {
        var segments = new List<Segment>();
        int pos = 0;
        while (pos < path.Length)
        {
            byte c = path[pos];
            if (c == (byte)'.')
            {
                pos++;
                if (pos == path.Length)
                {
                    return new ClaimPathResult(ConfigError.PathInvalid);
                }
                if (path[pos] == (byte)'[')
                {
                    continue;
                }
                if (path[pos] == (byte)'"')
                {
                    if (!TryQuoted(path, ref pos, out byte[] quoted))
                    {
                        return new ClaimPathResult(ConfigError.PathInvalid);
                    }
                    segments.Add(Segment.Member(quoted));
                    continue;
                }

                int start = pos;
                while (pos < path.Length && path[pos] != (byte)'.' && path[pos] != (byte)'[')
                {
                    if (path[pos] is (byte)']' or (byte)'"' or (byte)' ')
                    {
                        return new ClaimPathResult(ConfigError.PathInvalid);
                    }
                    pos++;
                }
                if (pos == start)
                {
                    return new ClaimPathResult(ConfigError.PathInvalid);
                }
                segments.Add(Segment.Member(path[start..pos].ToArray()));
            }
            else if (c == (byte)'[')
            {
                pos++;
                if (pos < path.Length && path[pos] == (byte)'"')
                {
                    if (!TryQuoted(path, ref pos, out byte[] quoted)
                        || pos >= path.Length || path[pos] != (byte)']')
                    {
                        return new ClaimPathResult(ConfigError.PathInvalid);
                    }
                    pos++;
                    segments.Add(Segment.Member(quoted));
                    continue;
                }

                int index = 0;
                int digits = 0;
                while (pos < path.Length && path[pos] >= (byte)'0' && path[pos] <= (byte)'9')
                {
                    if (++digits > 9)
                    {
                        return new ClaimPathResult(ConfigError.PathInvalid);
                    }
                    index = index * 10 + (path[pos] - (byte)'0');
                    pos++;
                }
                if (digits == 0 || pos >= path.Length || path[pos] != (byte)']')
                {
                    return new ClaimPathResult(ConfigError.PathInvalid);
                }
                pos++;
                segments.Add(Segment.Element(index));
            }
            else
            {
                return new ClaimPathResult(ConfigError.PathInvalid);
            }
        }

        if (segments.Count == 0)
        {
            return new ClaimPathResult(ConfigError.PathInvalid);
        }
        return new ClaimPathResult(new ClaimPath(segments.ToArray()));
    }

    /// <summary>Reads a JSON string literal at <paramref name="pos"/> (escapes allowed).</summary>
    private static bool TryQuoted(ReadOnlySpan<byte> path, ref int pos, out byte[] name)
    {
        name = Array.Empty<byte>();
        int end = pos + 1;
        while (end < path.Length && path[end] != (byte)'"')
        {
            end += path[end] == (byte)'\\' ? 2 : 1;
        }
        if (end >= path.Length)
        {
            return false;
        }

        ReadOnlySpan<byte> literal = path[pos..(end + 1)];
        try
        {
            var reader = new Utf8JsonReader(literal);
            if (!reader.Read() || reader.TokenType != JsonTokenType.String)
            {
                return false;
            }
            var buffer = new byte[literal.Length];
            int length = reader.CopyString(buffer);
            if (length == 0)
            {
                return false;
            }
            name = buffer.AsSpan(0, length).ToArray();
        }
        catch (JsonException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false; // invalid UTF-8 or a lone surrogate escape: no name (found by fuzzing)
        }

        pos = end + 1;
        return true;
    }

    private readonly struct Segment
    {
        private Segment(byte[]? name, int index)
        {
            Name = name;
            Index = index;
        }

        public byte[]? Name { get; }

        public int Index { get; }

        public static Segment Member(byte[] name) => new(name, -1);

        public static Segment Element(int index) => new(index: index, name: null);
    }
}
