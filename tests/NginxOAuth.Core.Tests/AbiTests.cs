using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// The published NativeAOT library against the ABI contract: its exported
/// nox_* symbols equal native/exports.txt, and the C smoke host walks every
/// status path through dlopen. Needs `dotnet publish managed/NginxOAuth.Native
/// -c Release -o build/managed`; ignored (with that hint) when not published.
/// </summary>
[NonParallelizable]
public sealed class AbiTests
{
    private string _root = "";
    private string _library = "";

    [SetUp]
    public void SetUp()
    {
        _root = FindRepositoryRoot();
        _library = Path.Combine(_root, "build", "managed", "ngx_http_oauth_managed.so");
        if (!File.Exists(_library))
        {
            Assert.Ignore($"{_library} is not published; run `dotnet publish managed/NginxOAuth.Native -c Release -o build/managed` first.");
        }
    }

    [Test]
    public void Exported_symbols_equal_the_export_list()
    {
        string[] expected = File.ReadAllLines(Path.Combine(_root, "native", "exports.txt"))
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .OrderBy(l => l, StringComparer.Ordinal)
            .ToArray();

        (int code, string output) = Run("nm", "-D", "--defined-only", _library);
        Assert.That(code, Is.Zero, output);

        var exported = new SortedSet<string>(StringComparer.Ordinal);
        foreach (string line in output.Split('\n'))
        {
            string[] fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 3)
            {
                continue;
            }
            string name = fields[^1];
            int version = name.IndexOf('@');
            if (version >= 0)
            {
                name = name[..version];
            }
            if (name.StartsWith("nox_", StringComparison.Ordinal))
            {
                exported.Add(name);
            }
        }

        Assert.That(exported, Is.EqualTo(expected));
    }

    [Test]
    public void Smoke_host_passes_every_check()
    {
        string smoke = Path.Combine(Path.GetTempPath(), "nox-smoke-" + Environment.ProcessId);
        (int cc, string ccOutput) = Run("clang", "-Wall", "-Wextra", "-Werror",
            "-I", Path.Combine(_root, "native", "include"),
            Path.Combine(_root, "native", "smoke", "smoke.c"), "-ldl", "-o", smoke);
        Assert.That(cc, Is.Zero, ccOutput);

        try
        {
            (int code, string output) = Run(smoke, _library, Path.Combine(_root, "native", "exports.txt"));
            TestContext.Out.WriteLine(output);
            string[] failed = output.Split('\n').Where(l => l.StartsWith("FAIL", StringComparison.Ordinal)).ToArray();
            Assert.That(failed, Is.Empty);
            Assert.That(output, Does.Contain("ok jwt_verify ok, header and payload written"));
            Assert.That(output, Does.Contain("ok sts_free twice is E_HANDLE"), "the STS exports were walked");
            Assert.That(code, Is.Zero);
        }
        finally
        {
            File.Delete(smoke);
        }
    }

    private static string FindRepositoryRoot()
    {
        for (DirectoryInfo? dir = new(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "NginxOAuth.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("NginxOAuth.sln not found above " + TestContext.CurrentContext.TestDirectory);
    }

    private static (int Code, string Output) Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using Process process = Process.Start(start)!;
        System.Threading.Tasks.Task<string> stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(120_000))
        {
            process.Kill();
            return (-1, stdout + "\n(timed out)");
        }
        return (process.ExitCode, stdout + stderr.Result);
    }
}

/// <summary>
/// The status codes as text: the header defines each NOX_* status once and
/// no two share a number, Abi.cs mirrors every value, and the core's
/// closed enums (cast straight to a status by the exports) carry the
/// header's numbers. Two branches that each take the next free number
/// fail here instead of in a log line.
/// </summary>
public sealed class AbiHeaderTests
{
    private static readonly System.Text.RegularExpressions.Regex Define =
        new(@"^#define\s+(NOX_[A-Z0-9_]+)\s+(-?\d+)\b", System.Text.RegularExpressions.RegexOptions.Multiline);

    private static string Root()
    {
        for (DirectoryInfo? dir = new(TestContext.CurrentContext.TestDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "NginxOAuth.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("NginxOAuth.sln not found above " + TestContext.CurrentContext.TestDirectory);
    }

    /// <summary>The #defines of the header's "status codes" section.</summary>
    private static Dictionary<string, int> StatusCodes()
    {
        string header = File.ReadAllText(Path.Combine(Root(), "native", "include", "ngx_oauth_abi.h"));
        int start = header.IndexOf("---- status codes", StringComparison.Ordinal);
        int end = header.IndexOf("---- limits", StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThan(0));
        Assert.That(end, Is.GreaterThan(start));
        var codes = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (System.Text.RegularExpressions.Match m in Define.Matches(header[start..end]))
        {
            codes.Add(m.Groups[1].Value, int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        return codes;
    }

    [Test]
    public void Every_status_code_of_the_header_has_its_own_number()
    {
        Dictionary<string, int> codes = StatusCodes();
        string[] shared = codes.GroupBy(c => c.Value).Where(g => g.Count() > 1)
            .Select(g => g.Key + ": " + string.Join(", ", g.Select(c => c.Key))).ToArray();

        Assert.That(codes, Is.Not.Empty);
        Assert.That(shared, Is.Empty);
    }

    [Test]
    public void Abi_cs_mirrors_every_status_code_of_the_header()
    {
        string abi = File.ReadAllText(Path.Combine(Root(), "managed", "NginxOAuth.Native", "Abi.cs"));
        var mirrored = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (System.Text.RegularExpressions.Match m in System.Text.RegularExpressions.Regex.Matches(abi,
                     @"const int (NOX_[A-Z0-9_]+) = (-?\d+);"))
        {
            mirrored[m.Groups[1].Value] = int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture);
        }

        foreach ((string name, int value) in StatusCodes())
        {
            Assert.That(mirrored.TryGetValue(name, out int v) ? v : (int?)null, Is.EqualTo(value), name);
        }
    }

    [TestCase(typeof(NginxOAuth.Core.TokenError))]
    [TestCase(typeof(NginxOAuth.Core.ConfigError))]
    public void Core_outcomes_carry_the_numbers_of_the_header(Type outcomes)
    {
        Dictionary<string, int> codes = StatusCodes();
        foreach (string member in Enum.GetNames(outcomes).Where(n => n != "None"))
        {
            // KeyForEncryption -> NOX_KEY_ENCRYPTION; otherwise PascalCase -> NOX_UPPER_SNAKE
            string name = member == "KeyForEncryption" ? "NOX_KEY_ENCRYPTION"
                : "NOX_" + System.Text.RegularExpressions.Regex.Replace(member, "(?<=[a-z0-9])([A-Z])", "_$1").ToUpperInvariant();
            Assert.That(codes.TryGetValue(name, out int v) ? v : (int?)null,
                Is.EqualTo(Convert.ToInt32(Enum.Parse(outcomes, member), System.Globalization.CultureInfo.InvariantCulture)),
                outcomes.Name + "." + member + " vs " + name);
        }
    }
}
