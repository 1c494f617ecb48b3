using System;
using System.Collections.Generic;
using System.IO;
using NginxOAuth.Fuzz;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// The fuzz targets (tests/fuzz/) without a fuzzer: every input saved in
/// FuzzRegressions/&lt;target&gt;/ (crashes found earlier) and every seed
/// runs through its target without an exception. A target throws when the
/// core throws or when a result breaks its contract.
/// </summary>
public sealed class FuzzRegressionTests
{
    private static readonly string Root = FindRepositoryRoot();

    private static string Regressions => Path.Combine(Root, "tests", "NginxOAuth.Core.Tests", "FuzzRegressions");

    private static IEnumerable<TestCaseData> Targets()
    {
        foreach (FuzzTarget target in FuzzTargets.All)
        {
            yield return new TestCaseData(target.Name).SetArgDisplayNames(target.Name);
        }
    }

    [TestCaseSource(nameof(Targets))]
    public void Saved_crash_inputs_run_without_an_exception(string name)
    {
        FuzzTarget target = FuzzTargets.Find(name)!;
        string folder = Path.Combine(Regressions, name);
        string[] files = Directory.Exists(folder) ? Directory.GetFiles(folder) : [];
        Array.Sort(files, StringComparer.Ordinal);
        Assert.Multiple(() =>
        {
            foreach (string file in files)
            {
                byte[] input = File.ReadAllBytes(file);
                Assert.DoesNotThrow(() => target.Run(input), Path.GetFileName(file));
            }
        });
    }

    [TestCaseSource(nameof(Targets))]
    public void Seeds_run_without_an_exception(string name)
    {
        FuzzTarget target = FuzzTargets.Find(name)!;
        List<byte[]> seeds = Seeds.Build(Root)[name];
        Assert.That(seeds, Is.Not.Empty);
        Assert.Multiple(() =>
        {
            for (int i = 0; i < seeds.Count; i++)
            {
                byte[] input = seeds[i];
                Assert.DoesNotThrow(() => target.Run(input), $"seed {i}");
            }
        });
    }

    [Test]
    public void Every_regression_folder_names_a_target()
    {
        foreach (string folder in Directory.GetDirectories(Regressions))
        {
            Assert.That(FuzzTargets.Find(Path.GetFileName(folder)), Is.Not.Null, folder);
        }
    }

    private static string FindRepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "NginxOAuth.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("NginxOAuth.sln not found above " + AppContext.BaseDirectory);
    }
}
