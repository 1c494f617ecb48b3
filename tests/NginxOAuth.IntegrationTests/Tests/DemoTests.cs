using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// `./build.sh demo` is one of the README's two commands: its script must
/// start the gateway and show a valid token passing and an expired, a
/// forged and a missing token refused.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DemoTests
{
    [Test]
    public void Demo_gateway_accepts_the_valid_token_and_refuses_the_others()
    {
        string prefix = Directory.CreateTempSubdirectory("nginx-oauth-demo-").FullName;
        // workers (nobody) load the managed library through prefix/modules
        File.SetUnixFileMode(prefix, (UnixFileMode)0b111_101_101);
        int port = FreePorts.Next();
        int backend = FreePorts.Next();

        var psi = new ProcessStartInfo(Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "demo", "run-demo.sh"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(TestEnvironment.NginxBin);
        psi.ArgumentList.Add(TestEnvironment.ModulesDir);
        psi.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        psi.Environment["DEMO_ONESHOT"] = "1";
        psi.Environment["DEMO_PREFIX"] = prefix;
        psi.Environment["DEMO_BACKEND_PORT"] = backend.ToString(System.Globalization.CultureInfo.InvariantCulture);

        using Process process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start run-demo.sh");
        var stderr = new StringBuilder();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.BeginErrorReadLine();
        // curl prints headers with CRLF
        string output = process.StandardOutput.ReadToEnd().Replace("\r\n", "\n", StringComparison.Ordinal);

        if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("the demo did not finish within 60 s");
        }

        process.WaitForExit();
        string log = File.Exists(Path.Combine(prefix, "logs", "error.log"))
            ? File.ReadAllText(Path.Combine(prefix, "logs", "error.log"))
            : "";

        Assert.Multiple(() =>
        {
            Assert.That(process.ExitCode, Is.Zero, $"run-demo.sh failed:\n{output}\n{stderr}");
            Assert.That(output, Does.Contain("# a valid token: 200\n"));
            Assert.That(output, Does.Contain("hello alice, your roles: reader,writer"));
            Assert.That(Sections(output, "# an expired token"), Does.StartWith("HTTP/1.1 401"));
            Assert.That(Sections(output, "# a forged token"), Does.StartWith("HTTP/1.1 401"));
            Assert.That(Occurrences(output, "WWW-Authenticate: Bearer realm=\"demo api\", error=\"invalid_token\""), Is.EqualTo(2));
            Assert.That(output, Does.Contain("WWW-Authenticate: Bearer realm=\"demo api\"\n"), "a missing token gets the challenge without an error");
            Assert.That(output, Does.Contain($"curl -i http://127.0.0.1:{port}/api -H \"Authorization: Bearer ey"));
            Assert.That(log, Does.Contain("token expired"));
            Assert.That(log, Does.Contain("bad signature"));
            Assert.That(log, Does.Not.Match(@"\[(alert|crit|emerg)\]"));
        });

        Directory.Delete(prefix, recursive: true);
    }

    // the answer printed after the curl line of a section
    private static string Sections(string output, string heading)
    {
        int at = output.IndexOf(heading, StringComparison.Ordinal);
        Assert.That(at, Is.GreaterThanOrEqualTo(0), $"no section \"{heading}\" in:\n{output}");
        string[] lines = output[at..].Split('\n');
        return lines.Length > 2 ? lines[2] : "";
    }

    private static int Occurrences(string text, string what)
    {
        int count = 0;
        for (int i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
