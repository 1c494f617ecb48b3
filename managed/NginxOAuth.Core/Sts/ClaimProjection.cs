using System;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using NginxOAuth.Core.Json;

namespace NginxOAuth.Core.Sts;

/// <summary>
/// The <c>claims</c> setting: a jq object construction restricted to paths,
/// <c>{sub, email, roles: .realm_access.roles, "full name": .a["b c"]}</c>.
/// A bare name (identifier or JSON string) takes the member of that name; a
/// <c>key: path</c> entry takes a jq path (<see cref="ClaimPath"/>'s subset:
/// <c>.a.b</c>, <c>."x.y"</c>, <c>.a["b c"]</c>, <c>.a[0]</c>). Members a
/// path does not find are left out (jq would write null). Parsed once.
/// </summary>
public sealed class ClaimProjection
{
    private readonly (string Name, ClaimPath Path)[] _entries;

    private ClaimProjection((string, ClaimPath)[] entries)
    {
        _entries = entries;
    }

    public int Count => _entries.Length;

    /// <summary>True when the projection writes a member called <paramref name="name"/>.</summary>
    public bool Writes(string name)
    {
        foreach ((string n, ClaimPath _) in _entries)
        {
            if (n == name)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Writes the members found in <paramref name="source"/>, except those in
    /// <paramref name="skip"/>; returns the names written.
    /// </summary>
    public HashSet<string> Write(JsonElement source, Utf8JsonWriter writer, ICollection<string> skip)
    {
        var written = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string name, ClaimPath path) in _entries)
        {
            if (!skip.Contains(name) && path.TryResolve(source, out JsonElement value))
            {
                writer.WritePropertyName(name);
                value.WriteTo(writer);
                written.Add(name);
            }
        }
        return written;
    }

    /// <summary>Null on a syntax error, a bad path or a repeated output name.</summary>
    public static ClaimProjection? Parse(string text)
    {
        var entries = new List<(string, ClaimPath)>();
        int pos = 0;
        SkipSpace(text, ref pos);
        if (!Take(text, ref pos, '{'))
        {
            return null;
        }
        SkipSpace(text, ref pos);
        if (Take(text, ref pos, '}'))
        {
            return End(text, pos) ? new ClaimProjection(entries.ToArray()) : null;
        }

        while (true)
        {
            SkipSpace(text, ref pos);
            string? name = pos < text.Length && text[pos] == '"' ? ReadString(text, ref pos) : ReadIdentifier(text, ref pos);
            if (string.IsNullOrEmpty(name))
            {
                return null;
            }
            SkipSpace(text, ref pos);

            ClaimPath? path;
            if (Take(text, ref pos, ':'))
            {
                SkipSpace(text, ref pos);
                string? pathText = ReadPath(text, ref pos);
                if (pathText is null || pathText[0] != '.')
                {
                    return null;
                }
                path = ClaimPath.Parse(Encoding.UTF8.GetBytes(pathText), PathKind.Nested, default, default).Path;
            }
            else
            {
                path = ClaimPath.Parse(Encoding.UTF8.GetBytes(name), PathKind.Name, default, default).Path;
            }
            if (path is null)
            {
                return null;
            }
            foreach ((string n, ClaimPath _) in entries)
            {
                if (n == name)
                {
                    return null; // the output would repeat a member name
                }
            }
            entries.Add((name, path));

            SkipSpace(text, ref pos);
            if (Take(text, ref pos, ','))
            {
                continue;
            }
            if (Take(text, ref pos, '}'))
            {
                return End(text, pos) ? new ClaimProjection(entries.ToArray()) : null;
            }
            return null;
        }
    }

    private static bool End(string text, int pos)
    {
        SkipSpace(text, ref pos);
        return pos == text.Length;
    }

    private static void SkipSpace(string text, ref int pos)
    {
        while (pos < text.Length && text[pos] is ' ' or '\t' or '\r' or '\n')
        {
            pos++;
        }
    }

    private static bool Take(string text, ref int pos, char c)
    {
        if (pos < text.Length && text[pos] == c)
        {
            pos++;
            return true;
        }
        return false;
    }

    private static string? ReadIdentifier(string text, ref int pos)
    {
        int start = pos;
        while (pos < text.Length && (char.IsAsciiLetter(text[pos]) || text[pos] == '_'
            || (pos > start && char.IsAsciiDigit(text[pos]))))
        {
            pos++;
        }
        return pos > start ? text[start..pos] : null;
    }

    /// <summary>A JSON string literal (escapes allowed), decoded.</summary>
    private static string? ReadString(string text, ref int pos)
    {
        int end = pos + 1;
        while (end < text.Length && text[end] != '"')
        {
            end += text[end] == '\\' ? 2 : 1;
        }
        if (end >= text.Length)
        {
            return null;
        }
        try
        {
            var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(text[pos..(end + 1)]));
            if (!reader.Read() || reader.TokenType != JsonTokenType.String)
            {
                return null;
            }
            pos = end + 1;
            return reader.GetString();
        }
        catch (JsonException)
        {
            return null;
        }
        catch (InvalidOperationException)
        {
            return null; // a lone surrogate escape: no name (found by fuzzing)
        }
    }

    /// <summary>The text of a path: up to a ',' or '}' outside quotes and brackets, trailing space trimmed.</summary>
    private static string? ReadPath(string text, ref int pos)
    {
        int start = pos, depth = 0;
        bool quoted = false;
        for (; pos < text.Length; pos++)
        {
            char c = text[pos];
            if (quoted)
            {
                if (c == '\\')
                {
                    pos++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == '[')
            {
                depth++;
            }
            else if (c == ']')
            {
                depth--;
            }
            else if (depth == 0 && c is ',' or '}')
            {
                break;
            }
        }
        if (quoted || depth != 0)
        {
            return null;
        }
        string path = text[start..Math.Min(pos, text.Length)].TrimEnd(' ', '\t', '\r', '\n');
        return path.Length > 0 ? path : null;
    }
}
