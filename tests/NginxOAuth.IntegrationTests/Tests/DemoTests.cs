using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Net.Http;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using NginxOAuth.IntegrationTests.Harness;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// `./build.sh demo` is one of the README's two commands: its script starts
/// oidc-provider and nginx and prints curl lines, each under a heading that
/// ends with the status it must get.  The test runs the script, checks the
/// answers it printed, then runs every printed curl line as a user pasting
/// it would (with bash, while the demo runs), and finally presses Ctrl-C
/// (SIGINT) and checks that nginx and the authorization server are gone.
/// The outage is real: the second authorization server answers /down/
/// (200), the demo stops it, and the same curl line gets 503; pasted
/// afterwards, a line gets what the demo's last run of it got.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class DemoTests
{
    private static readonly Regex _heading = new(@"^# (.*): (\d{3})$", RegexOptions.CultureInvariant);

    [Test]
    public void Every_printed_curl_line_gets_the_status_its_heading_names_and_ctrl_c_stops_everything()
    {
        string prefix = Directory.CreateTempSubdirectory("nginx-oauth-demo-").FullName;
        // workers (nobody) load the managed library through prefix/modules
        File.SetUnixFileMode(prefix, (UnixFileMode)0b111_101_101);
        int port = FreePorts.Next();
        int idp = FreePorts.Next();
        int down = FreePorts.Next();

        var psi = new ProcessStartInfo(Path.Combine(TestEnvironment.RepoRoot, "nginx-conf", "demo", "run-demo.sh"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(TestEnvironment.NginxBin);
        psi.ArgumentList.Add(TestEnvironment.ModulesDir);
        psi.ArgumentList.Add(port.ToString(CultureInfo.InvariantCulture));
        psi.Environment["DEMO_PREFIX"] = prefix;
        psi.Environment["DEMO_BACKEND_PORT"] = FreePorts.Next().ToString(CultureInfo.InvariantCulture);
        psi.Environment["DEMO_IDP_PORT"] = idp.ToString(CultureInfo.InvariantCulture);
        psi.Environment["DEMO_DOWN_PORT"] = down.ToString(CultureInfo.InvariantCulture);

        if (!OnPath("node") || !OnPath("npm"))
        {
            Assert.Ignore("the demo needs node and npm");
        }

        using Process process = Process.Start(psi) ?? throw new InvalidOperationException("cannot start run-demo.sh");
        var stderr = new StringBuilder();
        var stdout = new StringBuilder();
        using var running = new ManualResetEventSlim();
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (stderr) { stderr.AppendLine(e.Data); } } };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                running.Set();
                return;
            }

            lock (stdout)
            {
                stdout.Append(e.Data.Replace("\r", "", StringComparison.Ordinal)).Append('\n');
            }

            if (e.Data.StartsWith("Running; Ctrl-C", StringComparison.Ordinal))
            {
                running.Set();
            }
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        try
        {
            // the first run installs oidc-provider from npm
            Assert.That(running.Wait(TimeSpan.FromMinutes(3)), Is.True, "the demo did not get ready");
            string output;
            lock (stdout)
            {
                output = stdout.ToString();
            }

            Assert.That(process.HasExited, Is.False, $"run-demo.sh exited:\n{output}\n{stderr}");
            List<(string Heading, int Status, string Curl, string Printed)> sections = Sections(output);

            Assert.Multiple(() =>
            {
                Assert.That(sections, Has.Count.EqualTo(11), output);
                Assert.That(output, Does.Contain($"Logs: {prefix}/logs/"));
                Assert.That(output, Does.Match(@"# introspection calls the gateway made so far \(.*\): 1\n"), "the second call is a cache hit");
                Assert.That(output, Does.Contain("backend: JWT of demo-app, scope \"api:read api:write\""));
                Assert.That(output, Does.Contain("backend: introspected token of demo-app, scope \"api:read api:write\""));
                Assert.That(Occurrences(output, "backend: a token for \"orders\" with scope \"api:read\", issued to demo-gateway"), Is.EqualTo(2),
                    "the exchange and the STS exchange hand the backend a narrower token");
                Assert.That(output, Does.Contain("WWW-Authenticate: Bearer realm=\"demo\"\n"));
                Assert.That(output, Does.Contain("WWW-Authenticate: Bearer realm=\"demo\", error=\"invalid_token\""));
                Assert.That(output, Does.Contain("WWW-Authenticate: Bearer realm=\"demo\", error=\"insufficient_scope\""));
                Assert.That(output, Does.Contain("Retry-After: "));
                // the outage: one curl line, 200 while the second IdP runs, 503 once stopped
                var outage = sections.Where(s => s.Curl.Contains("/down/", StringComparison.Ordinal)).ToList();
                Assert.That(outage.Select(s => s.Status), Is.EqualTo(new[] { 200, 503 }), output);
                Assert.That(outage.Select(s => s.Curl).Distinct().Count(), Is.EqualTo(1), "the same line before and after the stop");
                Assert.That(outage[0].Printed, Does.Contain("backend: introspected at the second IdP, token of demo-app"));
                Assert.That(outage[^1].Printed, Does.Contain("Retry-After: "));
                Assert.That(output, Does.Contain($"is stopped: nothing listens on http://127.0.0.1:{down}\n"));
                foreach ((string heading, int status, string curl, string printed) in sections)
                {
                    Assert.That(printed, Does.StartWith($"HTTP/1.1 {status} "), $"the demo's own answer to \"{heading}\"");
                    Assert.That(curl, Does.StartWith($"curl -i http://127.0.0.1:{port}/"));
                }
            });

            using (var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(5) })
            {
                Assert.That(() => probe.GetAsync(new Uri($"http://127.0.0.1:{down}/jwks")).GetAwaiter().GetResult(),
                    Throws.InstanceOf<HttpRequestException>(), "the stopped authorization server answers while the demo runs");
            }

            // a line printed twice (before and after the outage) is pasted once: it gets its last answer
            foreach ((string heading, int status, string curl, string printed) in sections.GroupBy(s => s.Curl).Select(g => g.Last()))
            {
                (int code, string pasted) = Bash(curl + " -s");
                string first = pasted.Split('\n')[0];
                Assert.That(code, Is.Zero, $"`{curl}` failed: {pasted}");
                Assert.That(first, Does.StartWith($"HTTP/1.1 {status} "), $"pasted \"{heading}\":\n{pasted}");
                string backend = Array.Find(printed.Split('\n'), l => l.StartsWith("backend:", StringComparison.Ordinal)) ?? "";
                Assert.That(pasted, Does.Contain(backend), $"pasted \"{heading}\" reaches the backend as in the demo");
            }

            int nginxPid = int.Parse(File.ReadAllText(Path.Combine(prefix, "logs", "nginx.pid")).Trim(), CultureInfo.InvariantCulture);

            // Ctrl-C
            Assert.That(Posix.Kill(process.Id, 2), Is.True);
            Assert.That(process.WaitForExit(TimeSpan.FromSeconds(60)), Is.True, "Ctrl-C did not stop the demo");
            var sw = Stopwatch.StartNew();
            while (Posix.IsAlive(nginxPid) && sw.Elapsed < TimeSpan.FromSeconds(30))
            {
                Thread.Sleep(50);
            }

            Assert.That(Posix.IsAlive(nginxPid), Is.False, "nginx still runs after Ctrl-C");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            Assert.That(() => http.GetAsync(new Uri($"http://127.0.0.1:{idp}/jwks")).GetAwaiter().GetResult(),
                Throws.InstanceOf<HttpRequestException>(), "the authorization server still answers after Ctrl-C");

            string log = File.ReadAllText(Path.Combine(prefix, "logs", "error.log"));
            Assert.Multiple(() =>
            {
                Assert.That(log, Does.Contain("bad signature"));
                Assert.That(log, Does.Not.Match(@"\[(alert|crit|emerg)\]"));
            });
        }
        finally
        {
            if (!process.HasExited)
            {
                Posix.Kill(process.Id, 2);
                if (!process.WaitForExit(TimeSpan.FromSeconds(20)))
                {
                    process.Kill(entireProcessTree: true);
                }
            }
        }

        Directory.Delete(prefix, recursive: true);
    }

    // (heading, status it names, the curl line, the answer printed under it)
    private static List<(string, int, string, string)> Sections(string output)
    {
        var sections = new List<(string, int, string, string)>();
        string[] lines = output.Split('\n');
        for (int i = 0; i + 1 < lines.Length; i++)
        {
            Match m = _heading.Match(lines[i]);
            if (!m.Success || !lines[i + 1].StartsWith("curl ", StringComparison.Ordinal))
            {
                continue;
            }

            var printed = new StringBuilder();
            for (int j = i + 2; j < lines.Length && lines[j].Length > 0 && !lines[j].StartsWith('#'); j++)
            {
                printed.Append(lines[j]).Append('\n');
            }

            sections.Add((m.Groups[1].Value, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), lines[i + 1], printed.ToString()));
        }

        return sections;
    }

    private static (int Code, string Output) Bash(string line)
    {
        using Process p = Process.Start(new ProcessStartInfo("bash", ["-c", line])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        string output = p.StandardOutput.ReadToEnd().Replace("\r\n", "\n", StringComparison.Ordinal);
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + error);
    }

    private static bool OnPath(string file) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, file)));

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
