using System;
using System.Collections.Generic;
using System.IO;
using System.Net;
using System.Net.Http;
using System.Net.Http.Headers;
using System.Threading;
using System.Threading.Tasks;
using DotNet.Testcontainers.Builders;
using DotNet.Testcontainers.Configurations;
using DotNet.Testcontainers.Containers;
using DotNet.Testcontainers.Images;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// The Debian package `./build.sh deb` builds, installed with apt into a
/// clean container of the debootstrapped base image: apt resolves the nginx
/// ABI dependency from the mirror, the maintainer scripts enable the module,
/// Debian's stock nginx.conf loads it through modules-enabled, a protected
/// request is served, and remove then purge leave nothing behind.
/// Runs when NGINX_OAUTH_DEB names the .deb (`./build.sh test` sets it for
/// the container run); NGINX_OAUTH_BASE_IMAGE is the clean image.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class PackageTests
{
    private const string Package = "libnginx-mod-http-oauth";
    private const string Link = "/etc/nginx/modules-enabled/50-mod-http-oauth.conf";

    [Test]
    public async Task Package_installs_serves_a_protected_request_and_purges_cleanly()
    {
        string deb = Environment.GetEnvironmentVariable("NGINX_OAUTH_DEB") ?? "";
        if (deb.Length == 0)
        {
            Assert.Ignore("NGINX_OAUTH_DEB is not set (./build.sh test sets it for the container run)");
        }

        Assert.That(File.Exists(deb), Is.True, $"no package at {deb}");
        string image = Environment.GetEnvironmentVariable("NGINX_OAUTH_BASE_IMAGE") is { Length: > 0 } b
            ? b
            : "debian:bookworm-slim";

        string dir = Directory.CreateTempSubdirectory("nginx-oauth-deb-").FullName;
        File.Copy(deb, Path.Combine(dir, Path.GetFileName(deb)));
        int port = FreePorts.Next();
        int backend = FreePorts.Next();
        File.WriteAllText(Path.Combine(dir, "oauth-test.jwks"), TokenFactory.Jwks(Keys.Rs256));
        File.WriteAllText(Path.Combine(dir, "oauth-test.conf"), $$"""
            server {
                listen 127.0.0.1:{{port}};
                location /api {
                    auth_jwt "packaged";
                    auth_jwt_key_file /etc/nginx/oauth-test.jwks;
                    proxy_set_header X-User $jwt_claim_sub;
                    proxy_pass http://127.0.0.1:{{backend}};
                }
            }
            server {
                listen 127.0.0.1:{{backend}};
                location / {
                    return 200 "hello $http_x_user\n";
                }
            }
            """);

        IContainer container = new ContainerBuilder(image)
            .WithImagePullPolicy(PullPolicy.Never)
            .WithCreateParameterModifier(p =>
            {
                // apt reaches the mirror and the test reaches nginx on the host's loopback
                p.HostConfig ??= new Docker.DotNet.Models.HostConfig();
                p.HostConfig.NetworkMode = "host";
            })
            .WithBindMount(dir, "/pkg", AccessMode.ReadOnly)
            .WithEntrypoint("sleep")
            .WithCommand("infinity")
            .WithLabel("org.nginx-oauth.tests", "1")
            .Build();
        try
        {
            await container.StartAsync();

            // no service starts on its own in the container (port 80 is the host's)
            await Run(container, "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d");
            await Run(container, "apt-get update -qq", TimeSpan.FromMinutes(4));
            string install = await Run(container,
                $"DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends /pkg/{Path.GetFileName(deb)}",
                TimeSpan.FromMinutes(6));

            string listing = await Run(container,
                "ls /usr/lib/nginx/modules/ && readlink " + Link + " && cat /usr/share/nginx/modules-available/mod-http-oauth.conf");
            Assert.Multiple(() =>
            {
                Assert.That(listing, Does.Contain(TestEnvironment.ModuleFile));
                Assert.That(listing, Does.Contain(TestEnvironment.ManagedFile));
                Assert.That(listing, Does.Contain("/usr/share/nginx/modules-available/mod-http-oauth.conf"), install);
                Assert.That(listing, Does.Contain("load_module modules/ngx_http_oauth_module.so;"));
            });

            // Debian's own nginx.conf: modules-enabled/*.conf, conf.d/*.conf
            await Run(container, "rm -f /etc/nginx/sites-enabled/default && cp /pkg/oauth-test.conf /etc/nginx/conf.d/ "
                + "&& cp /pkg/oauth-test.jwks /etc/nginx/");
            string check = await Run(container, "nginx -t 2>&1");
            Assert.That(check, Does.Contain("syntax is ok"));

            await Run(container, "nginx");
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
            var api = new Uri($"http://127.0.0.1:{port}/api");
            HttpResponseMessage? ok = null;
            for (int i = 0; i < 50 && ok is null; i++)
            {
                try
                {
                    using var request = new HttpRequestMessage(HttpMethod.Get, api);
                    request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Keys.Token("alice"));
                    ok = await http.SendAsync(request);
                }
                catch (HttpRequestException)
                {
                    await Task.Delay(100);
                }
            }

            Assert.That(ok, Is.Not.Null, "nginx in the container does not answer");
            Assert.That(ok!.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(await ok.Content.ReadAsStringAsync(), Is.EqualTo("hello alice\n"));
            using HttpResponseMessage missing = await http.GetAsync(api);
            Assert.That(missing.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));

            await Run(container, "nginx -s quit && for i in $(seq 1 50); do [ -e /run/nginx.pid ] || exit 0; sleep 0.1; done; exit 1");
            string errors = await Run(container, "cat /var/log/nginx/error.log");
            Assert.That(errors, Does.Not.Match(@"\[(alert|crit|emerg)\]"));

            // remove: the module is disabled, nginx still starts without our server
            await Run(container, "rm /etc/nginx/conf.d/oauth-test.conf && apt-get remove -y -qq " + Package);
            string removed = await Run(container, "ls -a /etc/nginx/modules-enabled/; nginx -t 2>&1");
            Assert.That(removed, Does.Contain("syntax is ok"));
            Assert.That(removed, Does.Not.Contain("50-mod-http-oauth.conf\n"), "remove leaves the module enabled");

            // purge: no module file, no link (dangling or put aside), no package
            await Run(container, "apt-get purge -y -qq " + Package);
            string files = await Run(container,
                "ls -a /usr/lib/nginx/modules/ /etc/nginx/modules-enabled/ /usr/share/nginx/modules-available/ 2>&1; true");
            string dangling = await Run(container, "find /etc/nginx -xtype l");
            string status = await Run(container, "dpkg-query -W -f='${Status}' " + Package + " 2>&1; true");
            Assert.Multiple(() =>
            {
                Assert.That(files, Does.Not.Contain("ngx_http_oauth"));
                Assert.That(files, Does.Not.Contain("mod-http-oauth"));
                Assert.That(dangling.Trim(), Is.Empty, "dangling symlinks");
                Assert.That(status, Does.Not.Contain("installed").And.Not.Contain("config-files"));
            });
            Assert.That(await Run(container, "nginx -t 2>&1"), Does.Contain("syntax is ok"));
        }
        finally
        {
            await container.DisposeAsync();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static async Task<string> Run(IContainer container, string script, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(1));
        ExecResult r = await container.ExecAsync(new List<string> { "sh", "-c", script }, cts.Token);
        Assert.That(r.ExitCode, Is.Zero, $"`{script}` failed ({r.ExitCode}):\n{r.Stdout}\n{r.Stderr}");
        return r.Stdout + r.Stderr;
    }
}
