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
