using System;
using System.Collections.Generic;
using System.Text;
using System.Text.RegularExpressions;

namespace NginxOAuth.Core.Policy;

/// <summary>
/// Regular expressions of the match operator. .NET's engine, not PCRE: the
/// syntax the anchor's operators use (\A, \z, ^, $, classes, groups,
/// quantifiers) means the same in both. A pattern the non-backtracking
/// engine accepts runs there, in time linear in the claim's length, so no
/// claim can make it slow; a pattern that needs backtracking (lookaround,
/// backreferences, atomic groups) runs with a match timeout, and running
/// out of it is an error (the rule fails, negated or not). Patterns from
/// variables are compiled when first seen and kept in a small per-process
/// cache, so a request does not usually pay for compiling.
/// </summary>
public static class RulePattern
{
    /// <summary>Longest pattern, in UTF-8 bytes (the anchor's limit).</summary>
    public const int MaxLength = 1024;

    /// <summary>How long a backtracking match may run.</summary>
    public static readonly TimeSpan MatchTimeout = TimeSpan.FromMilliseconds(100);

    private const int CacheSize = 64;

    private static readonly object Lock = new();
    private static readonly Dictionary<string, LinkedListNode<(string Text, Regex? Regex)>> Cache =
        new(StringComparer.Ordinal);
    private static readonly LinkedList<(string Text, Regex? Regex)> Order = new();

    /// <summary>Compiles a pattern: PatternInvalid when it is too long or does not parse.</summary>
    public static ConfigError Compile(string text, out Regex? regex)
    {
        regex = null;
        if (Encoding.UTF8.GetByteCount(text) > MaxLength)
        {
            return ConfigError.PatternInvalid;
        }
        const RegexOptions options = RegexOptions.CultureInvariant;
        try
        {
            regex = new Regex(text, options | RegexOptions.NonBacktracking, MatchTimeout);
            return ConfigError.None;
        }
        catch (NotSupportedException)
        {
            // a construct only the backtracking engine has
        }
        catch (ArgumentException)
        {
            return ConfigError.PatternInvalid;
        }
        try
        {
            regex = new Regex(text, options, MatchTimeout);
            return ConfigError.None;
        }
        catch (ArgumentException)
        {
            return ConfigError.PatternInvalid;
        }
    }

    /// <summary>A compiled pattern from the cache (compiled and added on a miss); an invalid one is cached too.</summary>
    public static ConfigError Get(string text, out Regex? regex)
    {
        lock (Lock)
        {
            if (Cache.TryGetValue(text, out LinkedListNode<(string Text, Regex? Regex)>? node))
            {
                Order.Remove(node);
                Order.AddFirst(node);
                regex = node.Value.Regex;
                return regex is null ? ConfigError.PatternInvalid : ConfigError.None;
            }
        }

        ConfigError error = Compile(text, out regex);

        lock (Lock)
        {
            if (!Cache.ContainsKey(text))
            {
                if (Cache.Count >= CacheSize && Order.Last is { } last)
                {
                    Cache.Remove(last.Value.Text);
                    Order.RemoveLast();
                }
                Cache[text] = Order.AddFirst((text, regex));
            }
        }
        return error;
    }
}
