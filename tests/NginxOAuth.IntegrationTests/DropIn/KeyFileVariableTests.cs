using System;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.DropIn;

/// <summary>
/// auth_jwt_key_file with variables in the path: the file is read when its
/// path is first seen and kept per worker (keyed by path, mtime, size and
/// inode), never parsed again while it is unchanged. One worker, so every
/// request sees the same cache.
/// </summary>
[TestFixture]
public sealed class KeyFileVariableTests : NginxFixture
{
    private static readonly SigningKey Key1 = AlgVariant.Get("RS256").Key(0);
    private static readonly SigningKey Key2 = AlgVariant.Get("ES256").Key(0);
    private static readonly SigningKey Key3 = AlgVariant.Get("PS256").Key(1);
    private static readonly HmacSigningKey HmacA = new("HS256", "rot", new byte[32]);
    private static readonly HmacSigningKey HmacB = new("HS256", "rot", Enumerable.Repeat((byte)7, 32).ToArray());

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WorkerProcesses = 1;
        nginx.WriteFile("k1.jwks", TokenFactory.Jwks(Key1));
        nginx.WriteFile("k2.jwks", TokenFactory.Jwks(Key2));
        nginx.WriteFile("k3.jwks", TokenFactory.Jwks(Key3));
        nginx.WriteFile("k3.keyval", TokenFactory.Keyval(Key3));
        nginx.WriteFile("rotating.jwks", TokenFactory.Jwks(HmacA.Jwk(alg: "HS256")));
        nginx.WriteFile("broken.jwks", "{\"keys\": [");
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                set $key_file3 k3.jwks;

                location /static-and-variable {
                    auth_jwt "kf";
                    auth_jwt_key_file k1.jwks;
                    auth_jwt_key_file k2.jwks;
                    auth_jwt_key_file $key_file3;
                    {{echo}}
                }
                location /location-set {
                    set $key_file3 k1.jwks;
                    auth_jwt "kf";
                    auth_jwt_key_file $key_file3;
                    {{echo}}
                }
                location /by-arg {
                    auth_jwt "kf";
                    auth_jwt_key_file $arg_f.jwks;
                    {{echo}}
                }
                location /keyval {
                    auth_jwt "kf";
                    auth_jwt_key_file $arg_f.keyval keyval;
                    {{echo}}
                }
                location /cached {
                    auth_jwt "kf";
                    auth_jwt_key_file $arg_f.jwks;
                    auth_jwt_verify_cache zone=kfvars:1m;
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    private static string Token(SigningKey key, string sub = "alice") => TokenFactory.Sign(key, TokenFactory.Claims(sub));

    [TestCase(1, TestName = "Static_files_and_a_variable_file_each_verify_key1")]
    [TestCase(2, TestName = "Static_files_and_a_variable_file_each_verify_key2")]
    [TestCase(3, TestName = "Static_files_and_a_variable_file_each_verify_key3")]
    public async Task Static_files_and_a_variable_file_each_verify(int n)
    {
        SigningKey key = n switch { 1 => Key1, 2 => Key2, _ => Key3 };
        HttpReply reply = await Nginx.GetAsync("/static-and-variable", Token(key, $"user{n}"));

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"sub=user{n}"));
    }

    [Test]
    public async Task The_value_set_in_the_location_is_the_file_used()
    {
        Assert.That((await Nginx.GetAsync("/location-set", Token(Key1))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/location-set", Token(Key3))).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task The_path_may_come_from_the_request_and_a_keyval_file_works_too()
    {
        Assert.That((await Nginx.GetAsync("/by-arg?f=k2", Token(Key2))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/by-arg?f=k1", Token(Key2))).Status, Is.EqualTo(401));
        Assert.That((await Nginx.GetAsync("/keyval?f=k3", Token(Key3))).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Missing_file_is_401_with_an_error_line()
    {
        HttpReply reply = await Nginx.GetAsync("/by-arg?f=nowhere", Token(Key1));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: auth_jwt_key_file "".*nowhere\.jwks"": stat\(\) failed");
        Nginx.AllowLogLines(@"auth_jwt_key_file "".*nowhere\.jwks""");
    }

    [Test]
    public async Task File_that_is_not_JSON_is_401_with_an_error_line()
    {
        HttpReply reply = await Nginx.GetAsync("/by-arg?f=broken", Token(Key1));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Nginx.WaitForLogLine(TestLogMark, @"\[error\].*auth_jwt: auth_jwt_key_file "".*broken\.jwks"": invalid JSON");
    }

    [Test]
    public async Task Unchanged_file_is_not_read_again_and_a_changed_one_is()
    {
        string path = Path.Combine(Nginx.Directory, "rotating.jwks");
        Assert.That((await Nginx.GetAsync("/by-arg?f=rotating", Token(HmacA))).Status, Is.EqualTo(200));

        // same size, same mtime: the worker keeps the keys it parsed
        DateTime mtime = File.GetLastWriteTimeUtc(path);
        string next = TokenFactory.Jwks(HmacB.Jwk(alg: "HS256"));
        Assert.That(next.Length, Is.EqualTo(new FileInfo(path).Length));
        File.WriteAllText(path, next);
        File.SetLastWriteTimeUtc(path, mtime);

        Assert.That((await Nginx.GetAsync("/by-arg?f=rotating", Token(HmacA))).Status, Is.EqualTo(200),
            "not parsed again while mtime and size are unchanged");
        Assert.That((await Nginx.GetAsync("/by-arg?f=rotating", Token(HmacB))).Status, Is.EqualTo(401));

        // a new mtime: read again on the next request
        File.SetLastWriteTimeUtc(path, mtime.AddSeconds(10));

        Assert.That((await Nginx.GetAsync("/by-arg?f=rotating", Token(HmacB))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/by-arg?f=rotating", Token(HmacA))).Status, Is.EqualTo(401));
    }

    [Test]
    public async Task More_files_than_the_cache_holds_all_keep_working()
    {
        for (int i = 0; i < 70; i++)
        {
            Nginx.WriteFile($"many{i}.jwks", TokenFactory.Jwks(Key2));
        }

        for (int i = 0; i < 70; i++)
        {
            Assert.That((await Nginx.GetAsync($"/by-arg?f=many{i}", Token(Key2))).Status, Is.EqualTo(200), $"file {i}");
        }

        // the first ones were dropped (least recently used) and are read again
        Assert.That((await Nginx.GetAsync("/by-arg?f=many0", Token(Key2))).Status, Is.EqualTo(200));
    }

    [Test]
    public async Task Verify_cache_entries_follow_the_file_content()
    {
        Assert.That((await Nginx.GetAsync("/cached?f=k1", Token(Key1, "cache1"))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/cached?f=k1", Token(Key1, "cache1"))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/cached?f=k2", Token(Key1, "cache1"))).Status, Is.EqualTo(401),
            "a token verified with one file is not a hit for another");
    }

    [Test]
    public void Undefined_variable_in_the_path_fails_nginx_t()
    {
        using var nginx = new NginxInstance("keyfilevar");
        nginx.Configure($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location / { auth_jwt "x"; auth_jwt_key_file $key_file; {{nginx.Echo("x")}} }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("unknown \"key_file\" variable"));
    }

    [Test]
    public async Task Skipped_keys_of_a_variable_file_are_reported_once_when_it_is_read()
    {
        var weak = new HmacSigningKey("HS256", "short", new byte[12]);
        Nginx.WriteFile("mixedvar.jwks", TokenFactory.Jwks(weak.Jwk(alg: "HS256"), Key1.Jwk()));

        Assert.That((await Nginx.GetAsync("/by-arg?f=mixedvar", Token(Key1))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/by-arg?f=mixedvar", Token(Key1))).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/by-arg?f=mixedvar", Token(weak))).Status, Is.EqualTo(401));

        string log = Nginx.ErrorLogSince(TestLogMark);
        Assert.That(System.Text.RegularExpressions.Regex.Matches(log,
                @"\[warn\].*auth_jwt: ""auth_jwt_key_file"" "".*mixedvar\.jwks"": key #0 \(kid ""short""\) skipped: HMAC key shorter than its hash").Count,
            Is.EqualTo(1), "one worker read the file once: " + log);
        Nginx.WaitForLogLine(TestLogMark, @"\[info\].*the key it needs was skipped when its set was loaded: HMAC key shorter than its hash");
    }
}
