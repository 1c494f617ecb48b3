using System;
using System.Collections.Generic;
using System.IO;
using SharpFuzz;

namespace NginxOAuth.Fuzz;

/// <summary>
/// The fuzz driver. tests/fuzz/run.sh builds it, instruments
/// NginxOAuth.Core.dll beside it with SharpFuzz, writes the seeds and runs
/// each target under afl-fuzz.
/// <code>
///   NginxOAuth.Fuzz list                             target names and what they read
///   NginxOAuth.Fuzz seeds DIR [REPOSITORY]           seed corpora into DIR/target/
///   NginxOAuth.Fuzz run TARGET                       the target under afl-fuzz (input on stdin)
///   NginxOAuth.Fuzz replay TARGET FILE|DIR...        run inputs once; exit 1 if any throws
/// </code>
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string command = args.Length > 0 ? args[0] : "";
        switch (command)
        {
            case "list" when args.Length == 1:
                foreach (FuzzTarget target in FuzzTargets.All)
                {
                    Console.WriteLine($"{target.Name,-16} {target.Description}");
                }
                return 0;
            case "seeds" when args.Length is 2 or 3:
                Dictionary<string, List<byte[]>> seeds = Seeds.Build(args.Length == 3 ? args[2] : null);
                Seeds.Write(args[1], seeds);
                foreach ((string name, List<byte[]> inputs) in seeds)
                {
                    Console.WriteLine($"{name,-16} {inputs.Count} seeds");
                }
                return 0;
            case "run" when args.Length == 2 && FuzzTargets.Find(args[1]) is { } target:
                Run(target);
                return 0;
            case "replay" when args.Length >= 3 && FuzzTargets.Find(args[1]) is { } target:
                return Replay(target, args[2..]);
            default:
                Console.Error.WriteLine("usage: NginxOAuth.Fuzz list | seeds DIR [REPOSITORY] | run TARGET"
                    + " | replay TARGET FILE|DIR...");
                Console.Error.WriteLine("targets: " + string.Join(", ", FuzzTargets.All));
                return 2;
        }
    }

    /// <summary>
    /// Under afl-fuzz: SharpFuzz's out-of-process fork server runs the target
    /// in a child process it restarts after a timeout or a crash that
    /// exceptions cannot report (stack overflow), so one bad input does not
    /// end the campaign. Without afl-fuzz it runs the input on stdin once.
    /// </summary>
    private static void Run(FuzzTarget target)
    {
        var buffer = new MemoryStream();
        Fuzzer.OutOfProcess.Run(stream =>
        {
            buffer.SetLength(0);
            stream.CopyTo(buffer);
            target.Run(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
        });
    }

    private static int Replay(FuzzTarget target, string[] paths)
    {
        var files = new List<string>();
        foreach (string path in paths)
        {
            if (Directory.Exists(path))
            {
                string[] inside = Directory.GetFiles(path);
                Array.Sort(inside, StringComparer.Ordinal);
                files.AddRange(inside);
            }
            else
            {
                files.Add(path);
            }
        }

        int crashes = 0;
        foreach (string file in files)
        {
            try
            {
                target.Run(File.ReadAllBytes(file));
            }
            catch (Exception e)
            {
                crashes++;
                Console.WriteLine($"crash: {target.Name} {file}: {e.GetType().FullName}: {e.Message}");
                foreach (string line in (e.StackTrace ?? "").Split('\n'))
                {
                    if (line.Contains("NginxOAuth.Core", StringComparison.Ordinal))
                    {
                        Console.WriteLine("    " + line.Trim());
                    }
                }
            }
        }
        Console.WriteLine($"{target.Name}: {files.Count} inputs replayed, {crashes} crashed");
        return crashes == 0 ? 0 : 1;
    }
}
