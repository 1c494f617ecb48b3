using System;
using System.Diagnostics;
using System.Threading.Tasks;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// Waits for a state instead of sleeping for a time: observes every 200 ms
/// until the observation is accepted, and fails the test with the last
/// observed value after a generous deadline (15 s unless told). A test that
/// waits for an entry or a token to expire polls for the expired state.
/// </summary>
public static class Poll
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(15);

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(200);

    /// <summary>
    /// Calls <paramref name="observe"/> until <paramref name="accept"/> holds for
    /// its value and returns that value; fails naming <paramref name="what"/>
    /// and the last value after the deadline.
    /// </summary>
    public static async Task<T> UntilAsync<T>(Func<Task<T>> observe, Func<T, bool> accept, string what,
        TimeSpan? deadline = null)
    {
        TimeSpan limit = deadline ?? Deadline;
        var sw = Stopwatch.StartNew();
        while (true)
        {
            T value = await observe().ConfigureAwait(false);
            if (accept(value))
            {
                return value;
            }

            if (sw.Elapsed > limit)
            {
                Assert.Fail($"timed out after {limit.TotalSeconds} s waiting for {what}; last observed: {value}");
            }

            await Task.Delay(Interval).ConfigureAwait(false);
        }
    }

    /// <summary>The same with a synchronous observation (a log, a counter).</summary>
    public static Task<T> UntilAsync<T>(Func<T> observe, Func<T, bool> accept, string what, TimeSpan? deadline = null) =>
        UntilAsync(() => Task.FromResult(observe()), accept, what, deadline);
}
