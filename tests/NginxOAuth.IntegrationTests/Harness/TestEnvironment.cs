using System;
using System.IO;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>Where the suite runs nginx.</summary>
public enum NginxHostKind
{
    /// <summary>A child process of the test run (the default).</summary>
    Local,

    /// <summary>A container of the image `./build.sh image` builds, through Testcontainers.</summary>
    Container,
}

/// <summary>
/// Where the nginx binary and the built modules are.  A missing module is a
/// hard failure with a message saying how to build it: CI always builds
/// first, so a silently skipped suite would hide a broken build.
/// </summary>
public static class TestEnvironment
{
    public const string ModuleFile = "ngx_http_oauth_module.so";
    public const string ManagedFile = "ngx_http_oauth_managed.so";

    private static readonly Lazy<string> _repoRoot = new(FindRepoRoot);
    private static readonly Lazy<string> _modulesDir = new(FindModulesDir);
    private static readonly Lazy<string> _nginxBin = new(FindNginx);
    private static readonly Lazy<NginxHostKind> _hostKind = new(FindHostKind);

    /// <summary>NGINX_OAUTH_HOST: local (default) or container.</summary>
    public static NginxHostKind HostKind => _hostKind.Value;

    public static string RepoRoot => _repoRoot.Value;

    /// <summary>The directory holding both .so files.</summary>
    public static string ModulesDir => _modulesDir.Value;

    public static string NginxBin => _nginxBin.Value;

    /// <summary>Keep the temp directories of nginx instances (for debugging).</summary>
    public static bool KeepTempDirs =>
        Environment.GetEnvironmentVariable("NGINX_OAUTH_KEEP_TMP") is { Length: > 0 } v && v != "0";

    private static string FindRepoRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "NginxOAuth.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException(
            $"cannot find the repository root (a directory with NginxOAuth.sln) above {AppContext.BaseDirectory}");
    }

    private static string FindModulesDir()
    {
        string? fromEnv = Environment.GetEnvironmentVariable("NGINX_OAUTH_MODULES");
        string dir = fromEnv is { Length: > 0 }
            ? Path.GetFullPath(fromEnv)
            : Path.Combine(RepoRoot, "build", "modules");
        string source = fromEnv is { Length: > 0 } ? "NGINX_OAUTH_MODULES" : "the default build/modules";

        foreach (string file in new[] { ModuleFile, ManagedFile })
        {
            if (!File.Exists(Path.Combine(dir, file)))
            {
                throw new InvalidOperationException(
                    $"{file} is missing in {dir} ({source}). Build the module first: ./build.sh " +
                    "(or set NGINX_OAUTH_MODULES to a directory holding both " +
                    $"{ModuleFile} and {ManagedFile}).");
            }
        }

        return dir;
    }

    private static NginxHostKind FindHostKind() =>
        (Environment.GetEnvironmentVariable("NGINX_OAUTH_HOST") ?? "") switch
        {
            "" or "local" => NginxHostKind.Local,
            "container" => NginxHostKind.Container,
            string other => throw new InvalidOperationException(
                $"NGINX_OAUTH_HOST={other}: it must be local or container"),
        };

    private static string FindNginx()
    {
        string bin = Environment.GetEnvironmentVariable("NGINX_BIN") is { Length: > 0 } b ? b : "/usr/sbin/nginx";
        if (!File.Exists(bin))
        {
            throw new InvalidOperationException(
                $"nginx binary {bin} not found: install nginx (./build.sh does) or set NGINX_BIN.");
        }

        return bin;
    }
}
