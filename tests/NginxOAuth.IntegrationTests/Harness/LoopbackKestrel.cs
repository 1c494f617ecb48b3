using System;
using System.Linq;
using System.Net;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace NginxOAuth.IntegrationTests.Harness;

/// <summary>
/// The fake servers' transport: bare Kestrel on 127.0.0.1 with an
/// ephemeral port, no logging, no Server header, every request to one
/// handler.
/// </summary>
public static class LoopbackKestrel
{
    public static Task<(WebApplication App, int Port)> StartAsync(RequestDelegate handler) =>
        StartAsync(_ => { }, app => app.Run(handler));

    /// <summary>
    /// The same transport for a server with its own services and pipeline
    /// (e.g. a real authorization server hosted in-process).
    /// </summary>
    public static async Task<(WebApplication App, int Port)> StartAsync(Action<IServiceCollection> services,
        Action<WebApplication> pipeline)
    {
        WebApplicationBuilder builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(o =>
        {
            o.Listen(IPAddress.Loopback, 0);
            o.AddServerHeader = false;
        });
        builder.Services.AddLogging(l => l.ClearProviders());
        services(builder.Services);

        WebApplication app = builder.Build();
        pipeline(app);
        await app.StartAsync().ConfigureAwait(false);

        string address = app.Services.GetRequiredService<IServer>().Features
            .Get<IServerAddressesFeature>()!.Addresses.First();
        return (app, new Uri(address).Port);
    }
}
