using System.Threading.Tasks;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// A fixture with one nginx for all its tests: <see cref="StartNginx"/>
/// configures and starts it once; after each test the error log written
/// during that test must hold no [alert], [crit] or [emerg] line.
/// </summary>
public abstract class NginxFixture
{
    private long _mark;

    protected NginxInstance Nginx { get; private set; } = null!;

    [OneTimeSetUp]
    public async Task StartNginxAsync()
    {
        Nginx = new NginxInstance(GetType().Name);
        try
        {
            await StartNginx(Nginx);
        }
        catch
        {
            Nginx.Abandon();
            throw;
        }
    }

    [OneTimeTearDown]
    public async Task StopNginxAsync()
    {
        try
        {
            await OnStopping();
        }
        finally
        {
            Nginx?.Dispose();
        }
    }

    [SetUp]
    public void MarkLog() => _mark = Nginx.LogMark();

    [TearDown]
    public void CheckLog() => Nginx.AssertLogClean(_mark);

    /// <summary>The log position at the start of the current test.</summary>
    protected long TestLogMark => _mark;

    /// <summary>Writes key files into <c>nginx.Directory</c> and starts nginx.</summary>
    protected abstract Task StartNginx(NginxInstance nginx);

    protected virtual Task OnStopping() => Task.CompletedTask;
}
