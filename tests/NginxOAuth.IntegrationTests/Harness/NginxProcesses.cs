using System;
using System.Collections.Generic;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// The worker processes of an nginx master and the signals both host kinds
/// send: a containerised master is visible from the host under its host
/// pid, so the same /proc and kill(2) calls serve both.
/// </summary>
public static class NginxProcesses
{
    private const string WorkerTitle = "nginx: worker process";
    private const string ShuttingDownTitle = "nginx: worker process is shutting down";

    /// <summary>The current workers, not the ones shutting down after a reload.</summary>
    public static IReadOnlyList<int> Workers(int masterPid)
    {
        var workers = new List<int>();
        foreach (int pid in Posix.Children(masterPid, WorkerTitle))
        {
            if (!Posix.CommandLine(pid).StartsWith(ShuttingDownTitle, StringComparison.Ordinal))
            {
                workers.Add(pid);
            }
        }

        return workers;
    }

    public static IReadOnlyList<int> ShuttingDownWorkers(int masterPid) => Posix.Children(masterPid, ShuttingDownTitle);

    public static void Reload(int masterPid)
    {
        if (!Posix.Kill(masterPid, Posix.SIGHUP))
        {
            throw new InvalidOperationException($"cannot send SIGHUP to nginx master {masterPid}");
        }
    }

    public static void KillWorker(int pid)
    {
        if (!Posix.Kill(pid, Posix.SIGKILL))
        {
            throw new InvalidOperationException($"cannot kill nginx worker {pid}");
        }
    }
}
