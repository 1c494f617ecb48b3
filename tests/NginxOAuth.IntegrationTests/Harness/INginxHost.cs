using System;
using System.Collections.Generic;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>The output of <c>nginx -t</c>.</summary>
public sealed record ConfigTestResult(int ExitCode, string Output);

/// <summary>
/// Process control of one nginx master (and its workers), whatever runs it.
/// <see cref="LocalProcessHost"/> runs nginx as a child process of the test
/// run; <see cref="ContainerHost"/> runs it in a container (Testcontainers)
/// with <see cref="Directory"/> mounted at the same path and host
/// networking.  <see cref="TestEnvironment.HostKind"/> picks one for the run.
/// </summary>
public interface INginxHost : IDisposable
{
    /// <summary>The prefix directory: nginx.conf, logs, temp files and key files live here.</summary>
    string Directory { get; }

    /// <summary>The directory holding the two .so files, as nginx sees it (for load_module).</summary>
    string ModulesDir { get; }

    /// <summary>The configuration file nginx runs with.</summary>
    string ConfigPath { get; }

    /// <summary>The error log the configuration writes to.</summary>
    string ErrorLogPath { get; }

    /// <summary>Starts the master (daemon off, so it stays a child); does not wait for readiness.</summary>
    void Start();

    bool IsRunning { get; }

    /// <summary>What the master printed on stdout/stderr (startup failures land here).</summary>
    string ConsoleOutput { get; }

    int MasterPid { get; }

    /// <summary>The current worker processes (not the ones shutting down after a reload).</summary>
    IReadOnlyList<int> WorkerPids();

    /// <summary>The workers still finishing their requests after a reload.</summary>
    IReadOnlyList<int> ShuttingDownWorkerPids();

    /// <summary>Asks the master to re-read the configuration (SIGHUP, as nginx -s reload does).</summary>
    void SignalReload();

    /// <summary>Runs <c>nginx -s &lt;signal&gt;</c> (reload, quit ...) with the same -p/-c, as an operator would.</summary>
    ConfigTestResult SendCommand(string signal);

    /// <summary>Kills one worker with SIGKILL; the master respawns it.</summary>
    void KillWorker(int pid);

    /// <summary>Graceful stop (SIGQUIT), SIGKILL after <paramref name="grace"/>. True when it stopped gracefully.</summary>
    bool Stop(TimeSpan grace);

    /// <summary>Runs <c>nginx -t</c> on the configuration.</summary>
    ConfigTestResult TestConfig();

    /// <summary>Resident memory of the master, in bytes.</summary>
    long MasterRssBytes();

    /// <summary>The shared objects mapped into a process of this nginx.</summary>
    string MappedFiles(int pid);

    /// <summary>Where the test process reaches a port nginx listens on (127.0.0.1).</summary>
    Uri Endpoint(int port);
}
