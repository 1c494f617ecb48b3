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
/// comments or trailing commas), depth at most <see cref="Limits.MaxJsonDepth"/>,
/// and no duplicate member names in any object (compared after unescaping:
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

    public static JsonShape Check(ReadOnlySpan<byte> json)
    {
        var names = new NameTable();
        try
        {
            return Scan(json, ref names);
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

    private static JsonShape Scan(ReadOnlySpan<byte> json, ref NameTable names)
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
        do
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartObject:
                    levels[depth++] = names.Count;
                    break;
                case JsonTokenType.EndObject:
                    depth--;
                    if (!names.EndObject(levels[depth]))
                    {
                        return JsonShape.DuplicateMember;
                    }
                    break;
                case JsonTokenType.PropertyName:
                    names.Add(ref reader);
                    break;
            }
        }
        while (reader.Read());

        // Utf8JsonReader (final block) has rejected truncated or trailing data.
        return shape;
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
    /// Unescaped member names of the open objects. At the end of an object its
    /// names are sorted by hash and neighbours compared, so one object with n
    /// members costs O(n log n), not O(n^2).
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

            var hash = new HashCode();
            hash.AddBytes(_bytes.AsSpan(_byteCount, length));
            _entries[Count++] = new NameEntry { Hash = hash.ToHashCode(), Offset = _byteCount, Length = length };
            _byteCount += length;
        }

        /// <summary>Closes the object whose first name is at <paramref name="start"/>.</summary>
        public bool EndObject(int start)
        {
            int n = Count - start;
            bool unique = true;
            if (n > 1)
            {
                Span<NameEntry> level = _entries.AsSpan(start, n);
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
