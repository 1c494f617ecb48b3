using System.Runtime.Versioning;
using NUnit.Framework;

// nginx, signals and /proc: Linux only.
[assembly: SupportedOSPlatform("linux")]

// Fixtures run in parallel: each has its own nginx, ports and temp dir.
// Fixtures that reload, kill workers or measure memory are [NonParallelizable].
[assembly: Parallelizable(ParallelScope.Fixtures)]
[assembly: LevelOfParallelism(4)]
