using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Images;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// nginx in a container of the image `./build.sh image` builds, started
/// through Testcontainers.  The instance directory is bind-mounted at the
/// same path, so the generated nginx.conf, key files and the error log are
/// shared with the test; the container uses host networking, so nginx
/// listens on the host's loopback and reaches the tests' fake servers
/// there.  The master runs as the container's init; the host sees it and its
/// workers under host pids, so reload and worker kills are plain signals.
/// </summary>
public sealed class ContainerHost : INginxHost
{
    /// <summary>Where the image installs the module (Debian's nginx modules path).</summary>
    public const string ImageModulesDir = "/usr/lib/nginx/modules";

    private IContainer? _container;
    private int _masterPid;

    public ContainerHost(string directory)
    {
        Directory = directory;
    }

    public static string Image =>
        Environment.GetEnvironmentVariable("NGINX_OAUTH_IMAGE") is { Length: > 0 } image
            ? image
            : "nginx-oauth:latest";

    public string Directory { get; }

    public string ModulesDir => ImageModulesDir;

    public string ConfigPath => Path.Combine(Directory, "nginx.conf");

    public string ErrorLogPath => Path.Combine(Directory, "error.log");

    public bool IsRunning => _masterPid > 0 && Posix.IsAlive(_masterPid);

    public string ConsoleOutput
    {
        get
        {
            if (_container is null)
            {
                return "";
            }

            try
            {
                (string stdout, string stderr) = _container.GetLogsAsync().GetAwaiter().GetResult();
                return stdout + stderr;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                return $"(container logs unavailable: {e.Message})";
            }
        }
    }

    public int MasterPid => _masterPid > 0 ? _masterPid : throw new InvalidOperationException("nginx is not started");

    public void Start()
    {
        if (_container is not null)
        {
            throw new InvalidOperationException("nginx is already started");
        }

        _container = NewContainer(NginxArguments());
        _container.StartAsync().GetAwaiter().GetResult();
        _masterPid = HostPid(_container.Id);
    }

    public IReadOnlyList<int> WorkerPids() => NginxProcesses.Workers(MasterPid);

    public IReadOnlyList<int> ShuttingDownWorkerPids() => NginxProcesses.ShuttingDownWorkers(MasterPid);

    public void SignalReload() => NginxProcesses.Reload(MasterPid);

    public void KillWorker(int pid) => NginxProcesses.KillWorker(pid);

    public ConfigTestResult SendCommand(string signal)
    {
        if (_container is null)
        {
            throw new InvalidOperationException("nginx is not started");
        }

        var args = new List<string> { "nginx" };
        args.AddRange(NginxArguments());
        args.Add("-s");
        args.Add(signal);
        ExecResult result = _container.ExecAsync(args).GetAwaiter().GetResult();
        return new ConfigTestResult((int)(result.ExitCode ?? -1), result.Stdout + result.Stderr);
    }

    public bool Stop(TimeSpan grace)
    {
        if (_container is null || _masterPid == 0)
        {
            return true;
        }

        bool graceful = true;

        if (Posix.IsAlive(_masterPid))
        {
            Posix.Kill(_masterPid, Posix.SIGQUIT);
            graceful = WaitForExit(grace);

            if (!graceful)
            {
                Posix.Kill(_masterPid, Posix.SIGKILL);
                WaitForExit(TimeSpan.FromSeconds(5));
            }
        }

        _masterPid = 0;
        return graceful;
    }

    /// <summary>`nginx -t` in a one-shot container of the same image, with the same mount.</summary>
    public ConfigTestResult TestConfig()
    {
        var args = new List<string>(NginxArguments()) { "-t" };
        IContainer probe = NewContainer(args);

        try
        {
            probe.StartAsync().GetAwaiter().GetResult();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            long exitCode = probe.GetExitCodeAsync(cts.Token).GetAwaiter().GetResult();
            (string stdout, string stderr) = probe.GetLogsAsync().GetAwaiter().GetResult();
            return new ConfigTestResult((int)exitCode, stdout + stderr);
        }
        finally
        {
            probe.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    public long MasterRssBytes() => Posix.RssBytes(MasterPid);

    public string MappedFiles(int pid) => Posix.MappedFiles(pid);

    public Uri Endpoint(int port) => new($"http://127.0.0.1:{port}");

    public void Dispose()
    {
        Stop(TimeSpan.FromSeconds(10));

        if (_container is not null)
        {
            _container.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _container = null;
        }
    }

    private IContainer NewContainer(IEnumerable<string> arguments)
    {
        var command = new List<string>(arguments);

        return new ContainerBuilder(Image)
            .WithImagePullPolicy(PullPolicy.Never)
            .WithCreateParameterModifier(p =>
            {
                // all traffic stays on the host's loopback
                p.HostConfig ??= new Docker.DotNet.Models.HostConfig();
                p.HostConfig.NetworkMode = "host";
            })
            .WithBindMount(Directory, Directory, AccessMode.ReadWrite)
            .WithEntrypoint("nginx")
            .WithCommand(command.ToArray())
            .WithLabel("org.nginx-oauth.tests", "1")
            .WithWaitStrategy(Wait.ForUnixContainer())
            .Build();
    }

    private string[] NginxArguments() =>
        ["-p", Directory + "/", "-c", ConfigPath, "-e", ErrorLogPath];

    private bool WaitForExit(TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (Posix.IsAlive(_masterPid))
        {
            if (sw.Elapsed > timeout)
            {
                return false;
            }

            Thread.Sleep(25);
        }

        return true;
    }

    // the host pid of the container's init (the nginx master)
    private static int HostPid(string containerId)
    {
        var psi = new ProcessStartInfo("docker")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("inspect");
        psi.ArgumentList.Add("-f");
        psi.ArgumentList.Add("{{.State.Pid}}");
        psi.ArgumentList.Add(containerId);

        using Process process = Process.Start(psi)
            ?? throw new InvalidOperationException("cannot run docker inspect");
        string output = process.StandardOutput.ReadToEnd();
        string error = process.StandardError.ReadToEnd();
        process.WaitForExit();

        if (process.ExitCode != 0 || !int.TryParse(output.Trim(), out int pid) || pid <= 0)
        {
            throw new InvalidOperationException($"docker inspect {containerId}: {output}{error}".Trim());
        }

        return pid;
    }
}
