using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using System.Text;

namespace NginxOAuth.IntegrationTests.Metrics;

/// <summary>One sample: metric name, labels, value.</summary>
public sealed record PromSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public bool Has(params (string Name, string Value)[] labels) =>
        labels.All(l => Labels.TryGetValue(l.Name, out string? v) && v == l.Value);
}

/// <summary>
/// A strict parser of the Prometheus text exposition format 0.0.4: # HELP
/// and # TYPE lines, samples with escaped label values; a family's samples
/// come together after its TYPE; anything else is a FormatException.
/// </summary>
public sealed class PrometheusText
{
    private static readonly string[] Types = ["counter", "gauge", "histogram", "summary", "untyped"];

    private PrometheusText(List<PromSample> samples, Dictionary<string, string> types)
    {
        Samples = samples;
        TypeOf = types;
    }

    public IReadOnlyList<PromSample> Samples { get; }

    public IReadOnlyDictionary<string, string> TypeOf { get; }

    /// <summary>The value of the one sample named so with these labels; 0 when there is none.</summary>
    public double Value(string name, params (string Name, string Value)[] labels)
    {
        PromSample[] hits = Samples.Where(s => s.Name == name && s.Has(labels)).ToArray();
        if (hits.Length > 1)
        {
            throw new InvalidOperationException($"{hits.Length} samples of {name} match");
        }

        return hits.Length == 0 ? 0 : hits[0].Value;
    }

    public static PrometheusText Parse(string text)
    {
        var samples = new List<PromSample>();
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var helps = new HashSet<string>(StringComparer.Ordinal);
        var closed = new HashSet<string>(StringComparer.Ordinal);
        string? current = null;

        if (text.Length > 0 && !text.EndsWith('\n'))
        {
            throw new FormatException("the text does not end with a new line");
        }

        string[] lines = text.Split('\n');
        for (int n = 0; n < lines.Length - 1; n++)
        {
            string line = lines[n];
            if (line.StartsWith('#'))
            {
                string[] parts = line.Split(' ', 4);
                if (parts.Length >= 3 && parts[1] == "HELP")
                {
                    CheckName(parts[2], n);
                    if (!helps.Add(parts[2]))
                    {
                        throw new FormatException($"line {n + 1}: a second HELP for {parts[2]}");
                    }
                }
                else if (parts.Length == 4 && parts[1] == "TYPE")
                {
                    CheckName(parts[2], n);
                    if (!Types.Contains(parts[3]))
                    {
                        throw new FormatException($"line {n + 1}: unknown type {parts[3]}");
                    }

                    if (types.ContainsKey(parts[2]) || closed.Contains(parts[2]))
                    {
                        throw new FormatException($"line {n + 1}: a second TYPE for {parts[2]}");
                    }

                    if (current is not null)
                    {
                        closed.Add(current);
                    }

                    types[parts[2]] = parts[3];
                    current = parts[2];
                }

                continue;
            }

            if (line.Length == 0)
            {
                throw new FormatException($"line {n + 1}: empty");
            }

            PromSample sample = ParseSample(line, n);
            string family = FamilyOf(sample.Name, types);
            if (family != current)
            {
                throw new FormatException($"line {n + 1}: {sample.Name} outside its family's block");
            }

            samples.Add(sample);
        }

        return new PrometheusText(samples, types);
    }

    private static string FamilyOf(string name, Dictionary<string, string> types)
    {
        if (types.ContainsKey(name))
        {
            return name;
        }

        foreach (string suffix in new[] { "_bucket", "_sum", "_count" })
        {
            if (name.EndsWith(suffix, StringComparison.Ordinal)
                && types.TryGetValue(name[..^suffix.Length], out string? t) && t == "histogram")
            {
                return name[..^suffix.Length];
            }
        }

        throw new FormatException($"{name} has no TYPE");
    }

    private static void CheckName(string name, int n)
    {
        if (name.Length == 0 || !(char.IsAsciiLetter(name[0]) || name[0] == '_' || name[0] == ':')
            || name.Any(c => !(char.IsAsciiLetterOrDigit(c) || c == '_' || c == ':')))
        {
            throw new FormatException($"line {n + 1}: invalid metric name \"{name}\"");
        }
    }

    private static PromSample ParseSample(string line, int n)
    {
        int i = 0;
        while (i < line.Length && line[i] != '{' && line[i] != ' ')
        {
            i++;
        }

        string name = line[..i];
        CheckName(name, n);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);

        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (true)
            {
                int start = i;
                while (i < line.Length && line[i] != '=')
                {
                    i++;
                }

                string label = line[start..i];
                CheckName(label, n);
                if (i + 1 >= line.Length || line[i + 1] != '"')
                {
                    throw new FormatException($"line {n + 1}: label {label} without a quoted value");
                }

                i += 2;
                var value = new StringBuilder();
                while (true)
                {
                    if (i >= line.Length)
                    {
                        throw new FormatException($"line {n + 1}: unterminated label value");
                    }

                    char c = line[i++];
                    if (c == '"')
                    {
                        break;
                    }

                    if (c == '\\')
                    {
                        char e = i < line.Length ? line[i++] : ' ';
                        value.Append(e switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new FormatException($"line {n + 1}: invalid escape \\{e}"),
                        });
                        continue;
                    }

                    value.Append(c);
                }

                if (!labels.TryAdd(label, value.ToString()))
                {
                    throw new FormatException($"line {n + 1}: label {label} twice");
                }

                if (i < line.Length && line[i] == ',')
                {
                    i++;
                    continue;
                }

                if (i < line.Length && line[i] == '}')
                {
                    i++;
                    break;
                }

                throw new FormatException($"line {n + 1}: expected , or }} after a label");
            }
        }

        if (i >= line.Length || line[i] != ' ')
        {
            throw new FormatException($"line {n + 1}: no value");
        }

        string text = line[(i + 1)..];
        double v = text switch
        {
            "+Inf" => double.PositiveInfinity,
            "-Inf" => double.NegativeInfinity,
            "NaN" => double.NaN,
            _ => double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture),
        };

        return new PromSample(name, labels, v);
    }
}
