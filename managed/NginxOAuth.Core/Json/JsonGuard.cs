using System;
using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace NginxOAuth.Core.Json;

/// <summary>What <see cref="JsonGuard.Check"/> found at the top of a document.</summary>
public enum JsonShape
{
    Invalid = 0,
    /// <summary>Well-formed, but some object repeats a member name.</summary>
    DuplicateMember,
    Object,
    Array,
    Scalar,
}

/// <summary>
/// One forward pass over untrusted JSON: well-formedness (strict RFC 8259, no
/// comments or trailing commas, UTF-8, no lone surrogate escapes), depth at
/// most <see cref="Limits.MaxJsonDepth"/>, and no duplicate member names in any object (compared after unescaping:
/// "a" and "\u0061" are the same name). Duplicates are ambiguous, and
/// ambiguity between two JSON parsers is an attack vector.
/// </summary>
public static class JsonGuard
{
    internal static readonly JsonReaderOptions ReaderOptions = new()
    {
        MaxDepth = Limits.MaxJsonDepth,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    internal static readonly JsonDocumentOptions DocumentOptions = new()
    {
        MaxDepth = Limits.MaxJsonDepth,
        CommentHandling = JsonCommentHandling.Disallow,
        AllowTrailingCommas = false,
    };

    public static JsonShape Check(ReadOnlySpan<byte> json) => Check(json, default, Span<MemberValue>.Empty);

    /// <summary>
    /// <see cref="Check(ReadOnlySpan{byte})"/>, and in the same pass finds
    /// where the values of the root object's members named in
    /// <paramref name="wanted"/> are: <paramref name="found"/>[i] for name i
    /// (names compared after unescaping). Lets a caller read a few members
    /// without building a <see cref="JsonDocument"/>.
    /// </summary>
    public static JsonShape Check(ReadOnlySpan<byte> json, MemberNames wanted, Span<MemberValue> found)
    {
        found.Clear();
        // JSON text is UTF-8 (RFC 8259 8.1). Utf8JsonReader does not check
        // the bytes inside strings; reading such a string later throws.
        if (!System.Text.Unicode.Utf8.IsValid(json))
        {
            return JsonShape.Invalid;
        }
        var names = new NameTable();
        try
        {
            return Scan(json, ref names, wanted, found);
        }
        catch (JsonException)
        {
            return JsonShape.Invalid;
        }
        finally
        {
            names.Dispose();
        }
    }

    /// <summary>Parses a document that <see cref="Check"/> accepted.</summary>
    internal static JsonDocument Parse(ReadOnlyMemory<byte> json) =>
        JsonDocument.Parse(json, DocumentOptions);

    private static JsonShape Scan(ReadOnlySpan<byte> json, ref NameTable names, MemberNames wanted,
        Span<MemberValue> found)
    {
        var reader = new Utf8JsonReader(json, ReaderOptions);
        if (!reader.Read())
        {
            return JsonShape.Invalid;
        }

        JsonShape shape = reader.TokenType switch
        {
            JsonTokenType.StartObject => JsonShape.Object,
            JsonTokenType.StartArray => JsonShape.Array,
            _ => JsonShape.Scalar,
        };

        Span<int> levels = stackalloc int[Limits.MaxJsonDepth + 2];
        int depth = 0;
        int pending = -1; // the wanted member whose value is the next token
        bool duplicate = false;
        do
        {
            if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped
                && !SurrogatesPaired(reader.ValueSpan))
            {
                return JsonShape.Invalid;
            }
            if (pending >= 0)
            {
                found[pending] = MemberValue.At(ref reader);
                pending = -1;
            }
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    levels[depth++] = names.Count;
                    break;
                case JsonTokenType.EndObject:
                    depth--;
                    // read on: DuplicateMember promises well-formed JSON, and
                    // callers that tolerate repeated names parse it (found by
                    // fuzzing: {"a":1,"a":2}] threw out of nox_json_get)
                    duplicate |= !names.EndObject(levels[depth]);
                    break;
                case JsonTokenType.PropertyName:
                    names.Add(ref reader);
                    if (depth == 1 && !found.IsEmpty)
                    {
                        pending = wanted.IndexOf(ref reader, found.Length);
                    }
                    break;
            }
        }
        while (reader.Read());

        // Utf8JsonReader (final block) has rejected truncated or trailing data.
        return duplicate ? JsonShape.DuplicateMember : shape;
    }

    /// <summary>
    /// Every \uD800-\uDBFF escape is followed by a \uDC00-\uDFFF escape,
    /// and no low surrogate stands alone. A lone surrogate has no UTF-8 form:
    /// System.Text.Json throws when such a string or name is read (found by
    /// fuzzing: a token header <c>{"\ud800":1}</c> threw out of the verifier),
    /// and other parsers replace or refuse it, an ambiguity like a repeated name.
    /// </summary>
    private static bool SurrogatesPaired(ReadOnlySpan<byte> escaped)
    {
        for (int i = 0; i < escaped.Length; i++)
        {
            if (escaped[i] != (byte)'\\')
            {
                continue;
            }
            i++; // the reader has checked that every escape is complete
            if (escaped[i] != (byte)'u')
            {
                continue;
            }
            int unit = Hex4(escaped.Slice(i + 1, 4));
            i += 4;
            if (unit is >= 0xDC00 and <= 0xDFFF)
            {
                return false;
            }
            if (unit is >= 0xD800 and <= 0xDBFF)
            {
                if (i + 6 >= escaped.Length || escaped[i + 1] != (byte)'\\' || escaped[i + 2] != (byte)'u'
                    || Hex4(escaped.Slice(i + 3, 4)) is not (>= 0xDC00 and <= 0xDFFF))
                {
                    return false;
                }
                i += 6;
            }
        }
        return true;
    }

    private static int Hex4(ReadOnlySpan<byte> digits)
    {
        int value = 0;
        foreach (byte d in digits)
        {
            value = value * 16 + (d <= (byte)'9' ? d - '0' : (d | 0x20) - 'a' + 10);
        }
        return value;
    }

    /// <summary>Up to three member names for <see cref="Check(ReadOnlySpan{byte}, MemberNames, Span{MemberValue})"/>.</summary>
    public readonly ref struct MemberNames
    {
        private readonly ReadOnlySpan<byte> _n0;
        private readonly ReadOnlySpan<byte> _n1;
        private readonly ReadOnlySpan<byte> _n2;

        public MemberNames(ReadOnlySpan<byte> n0, ReadOnlySpan<byte> n1, ReadOnlySpan<byte> n2)
        {
            _n0 = n0;
            _n1 = n1;
            _n2 = n2;
        }

        /// <summary>The index of the property name under the reader among the first <paramref name="count"/> names, or -1.</summary>
        internal int IndexOf(ref Utf8JsonReader reader, int count)
        {
            if (count > 0 && reader.ValueTextEquals(_n0))
            {
                return 0;
            }
            if (count > 1 && reader.ValueTextEquals(_n1))
            {
                return 1;
            }
            if (count > 2 && reader.ValueTextEquals(_n2))
            {
                return 2;
            }
            return -1;
        }
    }

    private struct NameEntry
    {
        public int Hash;
        public int Offset;
        public int Length;
    }

    private readonly struct ByHash : System.Collections.Generic.IComparer<NameEntry>
    {
        public int Compare(NameEntry x, NameEntry y) => x.Hash.CompareTo(y.Hash);
    }

    /// <summary>
    /// Unescaped member names of the open objects. At the end of an object
    /// with more than <see cref="PairwiseMax"/> members its names are hashed,
    /// sorted by hash and neighbours compared, so one object with n members
    /// costs O(n log n), not O(n^2); smaller objects (a JWT header, most
    /// payloads) compare every pair, which is cheaper than hashing them.
    /// </summary>
    private struct NameTable : IDisposable
    {
        private NameEntry[]? _entries;
        private byte[]? _bytes;
        private int _byteCount;

        public int Count { get; private set; }

        public void Add(ref Utf8JsonReader reader)
        {
            int maxLength = reader.ValueSpan.Length;
            EnsureBytes(maxLength);
            int length;
            if (reader.ValueIsEscaped)
            {
                length = reader.CopyString(_bytes.AsSpan(_byteCount));
            }
            else
            {
                reader.ValueSpan.CopyTo(_bytes.AsSpan(_byteCount));
                length = maxLength;
            }

            EnsureEntry();
            _entries[Count++] = new NameEntry { Offset = _byteCount, Length = length };
            _byteCount += length;
        }

        /// <summary>Objects up to this many members compare every pair (no hashing, no sort).</summary>
        private const int PairwiseMax = 8;

        /// <summary>Closes the object whose first name is at <paramref name="start"/>.</summary>
        public bool EndObject(int start)
        {
            int n = Count - start;
            bool unique = true;
            if (n > 1 && n <= PairwiseMax)
            {
                Span<NameEntry> level = _entries.AsSpan(start, n);
                for (int i = 0; i < n && unique; i++)
                {
                    for (int j = i + 1; j < n; j++)
                    {
                        if (level[i].Length == level[j].Length && Name(level[i]).SequenceEqual(Name(level[j])))
                        {
                            unique = false;
                            break;
                        }
                    }
                }
            }
            else if (n > PairwiseMax)
            {
                Span<NameEntry> level = _entries.AsSpan(start, n);
                for (int i = 0; i < n; i++)
                {
                    var hash = new HashCode();
                    hash.AddBytes(Name(level[i]));
                    level[i].Hash = hash.ToHashCode();
                }
                level.Sort(new ByHash());
                for (int i = 0; i < n && unique; i++)
                {
                    for (int j = i + 1; j < n && level[j].Hash == level[i].Hash; j++)
                    {
                        if (Name(level[i]).SequenceEqual(Name(level[j])))
                        {
                            unique = false;
                            break;
                        }
                    }
                }
            }

            if (n > 0)
            {
                _byteCount = _entries![start].Offset;
                for (int i = start + 1; i < Count; i++)
                {
                    _byteCount = Math.Min(_byteCount, _entries[i].Offset);
                }
            }

            Count = start;
            return unique;
        }

        private readonly ReadOnlySpan<byte> Name(NameEntry e) => _bytes.AsSpan(e.Offset, e.Length);

        [MemberNotNull(nameof(_bytes))]
        private void EnsureBytes(int more)
        {
            if (_bytes is null || _bytes.Length - _byteCount < more)
            {
                byte[] next = ArrayPool<byte>.Shared.Rent(Math.Max(256, (_byteCount + more) * 2));
                if (_bytes is not null)
                {
                    _bytes.AsSpan(0, _byteCount).CopyTo(next);
                    ArrayPool<byte>.Shared.Return(_bytes);
                }
                _bytes = next;
            }
        }

        [MemberNotNull(nameof(_entries))]
        private void EnsureEntry()
        {
            if (_entries is null || Count == _entries.Length)
            {
                NameEntry[] next = ArrayPool<NameEntry>.Shared.Rent(Math.Max(16, Count * 2));
                if (_entries is not null)
                {
                    _entries.AsSpan(0, Count).CopyTo(next);
                    ArrayPool<NameEntry>.Shared.Return(_entries);
                }
                _entries = next;
            }
        }

        public void Dispose()
        {
            if (_bytes is not null)
            {
                ArrayPool<byte>.Shared.Return(_bytes);
                _bytes = null;
            }
            if (_entries is not null)
            {
                ArrayPool<NameEntry>.Shared.Return(_entries);
                _entries = null;
            }
        }
    }
}

/// <summary>
/// Where one member's value sits in a document that <see cref="JsonGuard"/>
/// accepted: its token type (None when the member is absent) and, for
/// strings and numbers, its bytes (inside the quotes, still escaped).
/// </summary>
public readonly struct MemberValue
{
    private MemberValue(JsonTokenType type, int start, int length, bool escaped)
    {
        Type = type;
        Start = start;
        Length = length;
        Escaped = escaped;
    }

    public JsonTokenType Type { get; }

    public int Start { get; }

    public int Length { get; }

    public bool Escaped { get; }

    public bool Present => Type != JsonTokenType.None;

    public bool IsString => Type == JsonTokenType.String;

    internal static MemberValue At(ref Utf8JsonReader reader)
    {
        JsonTokenType type = reader.TokenType;
        int start = (int)reader.TokenStartIndex + (type == JsonTokenType.String ? 1 : 0);
        return type is JsonTokenType.String or JsonTokenType.Number
            ? new MemberValue(type, start, reader.ValueSpan.Length, reader.ValueIsEscaped)
            : new MemberValue(type, start, 0, false);
    }

    /// <summary>A string value equals <paramref name="text"/> after unescaping.</summary>
    public bool ValueEquals(ReadOnlySpan<byte> json, ReadOnlySpan<byte> text)
    {
        if (!IsString)
        {
            return false;
        }
        if (!Escaped)
        {
            return json.Slice(Start, Length).SequenceEqual(text);
        }
        Utf8JsonReader reader = Quoted(json);
        return reader.ValueTextEquals(text);
    }

    /// <summary>A string value, unescaped.</summary>
    public string GetString(ReadOnlySpan<byte> json)
    {
        if (!IsString)
        {
            throw new InvalidOperationException("not a string");
        }
        if (!Escaped)
        {
            return System.Text.Encoding.UTF8.GetString(json.Slice(Start, Length));
        }
        Utf8JsonReader reader = Quoted(json);
        return reader.GetString()!;
    }

    // The quoted string on its own is a JSON document: a reader over it
    // unescapes with System.Text.Json's own rules.
    private Utf8JsonReader Quoted(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json.Slice(Start - 1, Length + 2));
        reader.Read();
        return reader;
    }
}
