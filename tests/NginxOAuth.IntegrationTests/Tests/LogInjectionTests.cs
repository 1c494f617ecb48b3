using System;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// Values from a token (kid, iss) reach the error log escaped: control
/// characters, quotes, backslashes and non-ASCII bytes as \xNN, cut at 128
/// bytes. A forged token whose kid or iss carries a newline and a fake log
/// line cannot start a line of its own, and no raw control or non-ASCII byte
/// is written.
/// </summary>
[TestFixture]
public sealed class LogInjectionTests : NginxFixture
{
    private const string Forged = "\n2026/01/01 00:00:00 [alert] 1#1: FORGED LINE";

    private static readonly SigningKey Stranger = AlgVariant.Get("RS256").Key(7);

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        // the escaped fake line stays inside the module's own [info] line
        nginx.AllowLogLines(@"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[info\] .*auth_jwt: rejected: .*FORGED LINE");
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "log";
                auth_jwt_key_file keys.jwks;

                location /plain { {{echo}} }
                location /rule { auth_jwt_require_claim role eq admin; {{echo}} }
            }
            """);
        return Task.CompletedTask;
    }

    /// <summary>Every value a test puts into kid / iss: the fake line, raw-looking bytes, quotes.</summary>
    private static string Nasty(string tag) =>
        tag + Forged + " \u0000\u001b[31m\u007f \u00e9\u00ff\u4e2d \"quoted\" back\\slash" + Forged;

    private static JsonObject Header(string kid) => new() { ["alg"] = "RS256", ["typ"] = "JWT", ["kid"] = kid };

    private void AssertLogIsSafe(long mark)
    {
        byte[] log = Nginx.ErrorLogBytesSince(mark);
        Assert.That(log, Is.Not.Empty);

        int bad = Array.FindIndex(log, b => (b < 0x20 && b != (byte)'\n') || b >= 0x7f);
        Assert.That(bad, Is.EqualTo(-1), bad < 0 ? "" :
            $"raw byte 0x{log[bad]:x2} in the error log near: {Encoding.Latin1.GetString(log, Math.Max(0, bad - 80), Math.Min(160, log.Length - Math.Max(0, bad - 80)))}");

        string[] lines = Encoding.ASCII.GetString(log).Split('\n');
        Assert.That(lines.Where(l => l.StartsWith("2026/01/01 00:00:00", StringComparison.Ordinal)), Is.Empty,
            "a forged line of its own");
        Assert.That(lines.Where(l => l.Contains("FORGED LINE", StringComparison.Ordinal)),
            Has.All.Match(@"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[info\] \d+#\d+: \*\d+ auth_jwt: rejected: "),
            "the fake text stays inside the module's own line");
    }

    [Test]
    public async Task Forged_token_with_a_newline_in_kid_and_iss_writes_no_line_of_its_own()
    {
        long mark = Nginx.LogMark();
        JsonObject claims = TokenFactory.Claims("forged", new JsonObject { ["iss"] = Nasty("iss") });
        string token = TokenFactory.Sign(Stranger, claims, Header(Nasty("kid")));

        HttpReply reply = await Nginx.GetAsync("/plain", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Nginx.WaitForLogLine(mark, @"\[info\].*auth_jwt: rejected: .*kid ""kid\\x0a2026/01/01 00:00:00 \[alert\] 1#1: FORGED LINE");
        AssertLogIsSafe(mark);
    }

    [Test]
    public async Task Bad_signature_with_a_known_kid_and_a_nasty_iss_writes_no_line_of_its_own()
    {
        long mark = Nginx.LogMark();
        JsonObject claims = TokenFactory.Claims("tampered", new JsonObject { ["iss"] = Nasty("iss") });
        string token = TokenFactory.Tampered(TokenFactory.Sign(Keys.Rs256, claims));

        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(401));
        Nginx.WaitForLogLine(mark, @"\[info\].*auth_jwt: rejected: bad signature .*iss ""iss\\x0a2026");
        AssertLogIsSafe(mark);
    }

    [Test]
    public async Task Valid_but_expired_token_with_a_nasty_iss_writes_no_line_of_its_own()
    {
        long mark = Nginx.LogMark();
        JsonObject claims = TokenFactory.Claims("expired", new JsonObject { ["iss"] = Nasty("iss") });
        claims["exp"] = TokenFactory.Now - 60;
        string token = TokenFactory.Sign(Keys.Rs256, claims, Header(Keys.Rs256.Kid));

        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(401));
        Nginx.WaitForLogLine(mark, @"\[info\].*auth_jwt: rejected: token expired");
        AssertLogIsSafe(mark);
    }

    [Test]
    public async Task Rule_failure_with_a_nasty_iss_writes_no_line_of_its_own()
    {
        long mark = Nginx.LogMark();
        JsonObject claims = TokenFactory.Claims("rule", new JsonObject { ["iss"] = Nasty("iss"), ["role"] = "user" });
        string token = TokenFactory.Sign(Keys.Rs256, claims);

        Assert.That((await Nginx.GetAsync("/rule", token)).Status, Is.EqualTo(401));
        Nginx.WaitForLogLine(mark, @"\[info\].*auth_jwt: rejected: claim ""role"" failed operator");
        AssertLogIsSafe(mark);
    }

    [TestCase("kid")]
    [TestCase("iss")]
    public async Task Lone_surrogate_escape_in_a_token_is_malformed_not_an_alert(string member)
    {
        // "\ud800" is not Unicode text: no reader can render it, so the part is not well-formed JSON
        long mark = Nginx.LogMark();
        string header = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"" + (member == "kid" ? "k\\ud800" : Keys.Rs256.Kid) + "\"}";
        string payload = "{\"sub\":\"s\",\"exp\":" + (TokenFactory.Now + 3600) + (member == "iss" ? ",\"iss\":\"i\\ud800\"" : "") + "}";
        string token = TokenFactory.SignRaw(Keys.Rs256, header, payload);

        HttpReply reply = await Nginx.GetAsync("/plain", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Nginx.WaitForLogLine(mark, @"\[info\].*auth_jwt: rejected: malformed token");
        Assert.That(Nginx.ProblemLines(mark), Is.Empty);
    }

    [Test]
    public async Task Long_kid_is_cut_in_the_log()
    {
        long mark = Nginx.LogMark();
        string kid = new string('k', 5000);
        string token = TokenFactory.Sign(Stranger, TokenFactory.Claims("long"), Header(kid));

        Assert.That((await Nginx.GetAsync("/plain", token)).Status, Is.EqualTo(401));
        string line = Nginx.WaitForLogLine(mark, @"\[info\].*auth_jwt: rejected: ");
        Assert.That(line, Does.Contain("kid \"" + new string('k', 128) + "...\""));
        AssertLogIsSafe(mark);
    }
}
