using System;
using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Runtime.InteropServices;

namespace NginxOAuth.Core.Json;

/// <summary>The outcome of writing a value into a caller's buffer.</summary>
public readonly struct JsonReadResult
{
    public JsonReadResult(JsonReadError error, int length)
    {
        Error = error;
        Length = length;
    }

    public JsonReadError Error { get; }

    /// <summary>Bytes written; with <see cref="JsonReadError.BufferTooSmall"/> the bytes needed.</summary>
    public int Length { get; }

    public bool IsOk => Error == JsonReadError.None;
}

/// <summary>
/// Renders JSON values for nginx variables: strings unescaped, numbers as
/// their JSON text, true/false, null as the empty string, arrays as their
/// elements rendered and joined by ",", objects as compact JSON (valid JSON,
/// not the anchor's bracket-stripped form). Non-ASCII is never escaped.
/// </summary>
public static class JsonRender
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
        SkipValidation = true,
        MaxDepth = Limits.MaxJsonDepth + 1,
    };

    /// <summary>Reads the member at <paramref name="path"/> of a JSON document and renders it.</summary>
    public static JsonReadResult Get(ReadOnlySpan<byte> json, ClaimPathResult path, Span<byte> output)
    {
        if (path.Error != ConfigError.None || path.Path is null)
        {
            return new JsonReadResult(JsonReadError.PathInvalid, 0);
        }

        if (JsonGuard.Check(json) == JsonShape.Invalid)
        {
            return new JsonReadResult(JsonReadError.JsonInvalid, 0);
        }

        byte[] copy = ArrayPool<byte>.Shared.Rent(json.Length);
        try
        {
            json.CopyTo(copy);
            using JsonDocument doc = JsonGuard.Parse(copy.AsMemory(0, json.Length));
            if (!path.Path.TryResolve(doc.RootElement, out JsonElement value))
            {
                return new JsonReadResult(JsonReadError.NotFound, 0);
            }

            using var writer = new PooledBufferWriter(json.Length);
            RenderVariable(value, writer);
            return CopyOut(writer.WrittenSpan, output);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    /// <summary>Re-serializes a JSON document compactly.</summary>
    public static JsonReadResult Compact(ReadOnlySpan<byte> json, Span<byte> output)
    {
        if (JsonGuard.Check(json) == JsonShape.Invalid)
        {
            return new JsonReadResult(JsonReadError.JsonInvalid, 0);
        }

        byte[] copy = ArrayPool<byte>.Shared.Rent(json.Length);
        try
        {
            json.CopyTo(copy);
            using JsonDocument doc = JsonGuard.Parse(copy.AsMemory(0, json.Length));
            using var writer = new PooledBufferWriter(json.Length);
            WriteCompact(doc.RootElement, writer);
            return CopyOut(writer.WrittenSpan, output);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(copy);
        }
    }

    /// <summary>Renders one value the way an nginx variable shows it.</summary>
    internal static void RenderVariable(JsonElement value, PooledBufferWriter writer)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.Array:
                bool first = true;
                foreach (JsonElement item in value.EnumerateArray())
                {
                    if (!first)
                    {
                        writer.Write((byte)',');
                    }
                    first = false;
                    if (item.ValueKind is JsonValueKind.Array or JsonValueKind.Object)
                    {
                        WriteCompact(item, writer);
                    }
                    else
                    {
                        RenderScalar(item, writer);
                    }
                }
                break;
            case JsonValueKind.Object:
                WriteCompact(value, writer);
                break;
            default:
                RenderScalar(value, writer);
                break;
        }
    }

    private static void RenderScalar(JsonElement value, PooledBufferWriter writer)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                byte[]? scratch = null;
                try
                {
                    writer.Write(JsonValues.Utf8(value, ref scratch));
                }
                finally
                {
                    if (scratch is not null)
                    {
                        ArrayPool<byte>.Shared.Return(scratch);
                    }
                }
                break;
            case JsonValueKind.Null:
                break;
            default:
                writer.Write(JsonMarshal.GetRawUtf8Value(value)); // number, true, false
                break;
        }
    }

    internal static void WriteCompact(JsonElement value, PooledBufferWriter buffer)
    {
        using var writer = new Utf8JsonWriter(buffer, WriterOptions);
        value.WriteTo(writer);
        writer.Flush();
    }

    private static JsonReadResult CopyOut(ReadOnlySpan<byte> rendered, Span<byte> output)
    {
        if (rendered.Length > output.Length)
        {
            return new JsonReadResult(JsonReadError.BufferTooSmall, rendered.Length);
        }

        rendered.CopyTo(output);
        return new JsonReadResult(JsonReadError.None, rendered.Length);
    }
}
