using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>Signals and /proc reads for processes of a local nginx.</summary>
public static partial class Posix
{
    public const int SIGHUP = 1;
    public const int SIGQUIT = 3;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SysKill(int pid, int sig);

    public static bool Kill(int pid, int signal) => SysKill(pid, signal) == 0;

    public static bool IsAlive(int pid)
    {
        string stat = ReadOrNull($"/proc/{pid}/stat") ?? "";
        // a zombie (state Z) has exited but is not reaped yet
        return stat.Length > 0 && StateOf(stat) != 'Z';
    }

    /// <summary>The child processes of <paramref name="ppid"/> whose title starts with <paramref name="titlePrefix"/>.</summary>
    public static List<int> Children(int ppid, string titlePrefix)
    {
        var result = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                continue;
            }

            string? stat = ReadOrNull(Path.Combine(dir, "stat"));
            if (stat is null || ParentOf(stat) != ppid || StateOf(stat) == 'Z')
            {
                continue;
            }

            if (CommandLine(pid).StartsWith(titlePrefix, StringComparison.Ordinal))
            {
                result.Add(pid);
            }
        }

        result.Sort();
        return result;
    }

    /// <summary>The process title (nginx rewrites argv: "nginx: worker process").</summary>
    public static string CommandLine(int pid)
    {
        try
        {
            byte[] raw = File.ReadAllBytes($"/proc/{pid}/cmdline");
            return Encoding.UTF8.GetString(raw).Replace('\0', ' ').Trim();
        }
        catch (IOException)
        {
            return "";
        }
        catch (UnauthorizedAccessException)
        {
            return "";
        }
    }

    /// <summary>Resident set size in bytes, or -1 when the process is gone.</summary>
    public static long RssBytes(int pid)
    {
        string? status = ReadOrNull($"/proc/{pid}/status");
        if (status is null)
        {
            return -1;
        }

        foreach (string line in status.Split('\n'))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                string kb = line["VmRSS:".Length..].Trim().Split(' ')[0];
                return long.Parse(kb, CultureInfo.InvariantCulture) * 1024;
            }
        }

        return -1;
    }

    /// <summary>The files mapped into a process (shared objects it has loaded).</summary>
    public static string MappedFiles(int pid) => ReadOrNull($"/proc/{pid}/maps") ?? "";

    private static int ParentOf(string stat)
    {
        // pid (comm) state ppid ...; comm may hold spaces and parentheses
        int close = stat.LastIndexOf(')');
        string[] rest = stat[(close + 2)..].Split(' ');
        return int.Parse(rest[1], CultureInfo.InvariantCulture);
    }

    private static char StateOf(string stat)
    {
        int close = stat.LastIndexOf(')');
        return close + 2 < stat.Length ? stat[close + 2] : '?';
    }

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
