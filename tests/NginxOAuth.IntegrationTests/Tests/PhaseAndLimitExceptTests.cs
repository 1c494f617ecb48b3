using System;
using System.Net.Http;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>auth_jwt_phase preaccess|access, auth_request subrequests, and limit_except blocks.</summary>
[TestFixture]
public sealed class PhaseAndLimitExceptTests : NginxFixture
{
    private static readonly SigningKey OtherKey = AlgVariant.Get("ES384").Key(3);

    protected override Task StartNginx(NginxInstance nginx)
    {
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        nginx.WriteFile("other.jwks", TokenFactory.Jwks(OtherKey));
        nginx.WriteFile("subs.json", """{"blocked": 1}""");
        string echo = nginx.Echo("sub=$jwt_claim_sub");
        nginx.Start($$"""
            limit_req_zone $arg_bucket zone=one:1m rate=1r/m;

            server {
                listen 127.0.0.1:{{nginx.Port}};

                location /preaccess {
                    auth_jwt "phase";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_phase preaccess;
                    {{echo}}
                }

                location /preaccess-deny {
                    auth_jwt "phase";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_phase preaccess;
                    deny all;
                    {{echo}}
                }

                location /preaccess-limit {
                    auth_jwt "phase";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_phase preaccess;
                    limit_req zone=one nodelay;
                    {{echo}}
                }

                location /access-deny {
                    auth_jwt "phase";
                    auth_jwt_key_file keys.jwks;
                    satisfy any;
                    allow 127.0.0.1;
                    deny all;
                    {{echo}}
                }

                location /gate {
                    auth_request /_check;
                    {{nginx.Echo("gate")}}
                }

                location = /_check {
                    internal;
                    auth_jwt "gate";
                    auth_jwt_key_file keys.jwks;
                    auth_jwt_phase preaccess;
                    {{nginx.Echo("checked")}}
                }

                location /writes {
                    limit_except GET {
                        auth_jwt "writes";
                        auth_jwt_key_file keys.jwks;
                    }
                    {{echo}}
                }

                location /admin-writes {
                    auth_jwt "api";
                    auth_jwt_key_file keys.jwks;
                    limit_except GET {
                        auth_jwt_require_claim role eq admin;
                    }
                    {{echo}}
                }

                location /everything-in-limit-except {
                    auth_jwt "lx";
                    auth_jwt_key_file keys.jwks;
                    limit_except GET {
                        auth_jwt_key_file other.jwks;
                        auth_jwt_revocation_list_sub subs.json;
                        auth_jwt_require $arg_ok error=403;
                        auth_jwt_require_header typ eq JWT;
                        auth_jwt_validate_exp off;
                        auth_jwt_validate_sig on;
                    }
                    {{echo}}
                }

                location /reads-open {
                    auth_jwt "ro";
                    auth_jwt_key_file keys.jwks;
                    limit_except POST {
                        auth_jwt off;
                    }
                    {{echo}}
                }
            }
            """);
        return Task.CompletedTask;
    }

    private static string Token(string sub = "alice", SigningKey? key = null, JsonObject? extra = null) =>
        TokenFactory.Sign(key ?? Keys.Rs256, TokenFactory.Claims(sub, extra));

    [Test]
    public async Task Preaccess_phase_validates_the_token()
    {
        HttpReply ok = await Nginx.GetAsync("/preaccess", Token("pre"));
        HttpReply missing = await Nginx.GetAsync("/preaccess");
        HttpReply bad = await Nginx.GetAsync("/preaccess", TokenFactory.Tampered(Token()));

        Assert.That(ok.Status, Is.EqualTo(200), ok.ToString());
        Assert.That(ok.Body, Is.EqualTo("sub=pre"));
        Assert.That(missing.Challenge, Is.EqualTo("Bearer realm=\"phase\""));
        Assert.That(bad.Challenge, Is.EqualTo("Bearer realm=\"phase\", error=\"invalid_token\""));
    }

    [Test]
    public async Task Preaccess_phase_runs_before_the_access_phase()
    {
        HttpReply invalid = await Nginx.GetAsync("/preaccess-deny", TokenFactory.Tampered(Token()));
        HttpReply valid = await Nginx.GetAsync("/preaccess-deny", Token());

        Assert.That(invalid.Status, Is.EqualTo(401), "the token is checked before deny");
        Assert.That(valid.Status, Is.EqualTo(403), "a valid token then meets deny all");
    }

    [Test]
    public async Task Passing_preaccess_check_lets_other_preaccess_modules_run()
    {
        string bucket = Guid.NewGuid().ToString("N");

        HttpReply first = await Nginx.GetAsync($"/preaccess-limit?bucket={bucket}", Token());
        HttpReply second = await Nginx.GetAsync($"/preaccess-limit?bucket={bucket}", Token());
        HttpReply rejected = await Nginx.GetAsync($"/preaccess-limit?bucket={bucket}");

        Assert.That(first.Status, Is.EqualTo(200), first.ToString());
        Assert.That(second.Status, Is.EqualTo(503), "limit_req still runs after auth_jwt passed");
        Assert.That(rejected.Status, Is.EqualTo(401), "auth_jwt runs before limit_req");
    }

    [Test]
    public async Task Access_phase_check_obeys_satisfy_any()
    {
        // allow 127.0.0.1 satisfies the access phase on its own
        HttpReply reply = await Nginx.GetAsync("/access-deny");

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
    }

    [Test]
    public async Task Preaccess_phase_checks_the_token_in_an_auth_request_subrequest()
    {
        HttpReply ok = await Nginx.GetAsync("/gate", Token());
        HttpReply missing = await Nginx.GetAsync("/gate");
        HttpReply bad = await Nginx.GetAsync("/gate", TokenFactory.Tampered(Token()));

        Assert.That(ok.Status, Is.EqualTo(200), ok.ToString());
        Assert.That(ok.Body, Is.EqualTo("gate"));
        Assert.That(missing.Status, Is.EqualTo(401));
        Assert.That(missing.Challenge, Is.EqualTo("Bearer realm=\"gate\""));
        Assert.That(bad.Status, Is.EqualTo(401));
    }

    [Test]
    public async Task Auth_jwt_in_limit_except_protects_only_the_other_methods()
    {
        HttpReply get = await Nginx.GetAsync("/writes");
        HttpReply post = await Nginx.SendAsync(HttpMethod.Post, "/writes");
        HttpReply postWithToken = await Nginx.SendAsync(HttpMethod.Post, "/writes", Token("writer"));

        Assert.That(get.Status, Is.EqualTo(200), get.ToString());
        Assert.That(post.Status, Is.EqualTo(401));
        Assert.That(post.Challenge, Is.EqualTo("Bearer realm=\"writes\""));
        Assert.That(postWithToken.Status, Is.EqualTo(200), postWithToken.ToString());
        Assert.That(postWithToken.Body, Is.EqualTo("sub=writer"));
    }

    [Test]
    public async Task Claim_rule_in_limit_except_adds_to_the_location_check()
    {
        string user = Token(extra: new JsonObject { ["role"] = "user" });
        string admin = Token(extra: new JsonObject { ["role"] = "admin" });

        Assert.That((await Nginx.GetAsync("/admin-writes", user)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.SendAsync(HttpMethod.Delete, "/admin-writes", user)).Status, Is.EqualTo(401));
        Assert.That((await Nginx.SendAsync(HttpMethod.Delete, "/admin-writes", admin)).Status, Is.EqualTo(200));
        Assert.That((await Nginx.GetAsync("/admin-writes")).Status, Is.EqualTo(401), "GET still needs a token");
    }

    [Test]
    public async Task Key_file_revocation_require_and_flags_work_in_limit_except()
    {
        JsonObject expired = TokenFactory.Claims("late");
        expired["exp"] = TokenFactory.Now - 600;

        HttpReply otherKeyGet = await Nginx.GetAsync("/everything-in-limit-except?ok=1", Token(key: OtherKey));
        HttpReply otherKeyPut = await Nginx.SendAsync(HttpMethod.Put, "/everything-in-limit-except?ok=1", Token(key: OtherKey));
        HttpReply expiredPut = await Nginx.SendAsync(HttpMethod.Put, "/everything-in-limit-except?ok=1",
            TokenFactory.Sign(OtherKey, expired));
        HttpReply blockedPut = await Nginx.SendAsync(HttpMethod.Put, "/everything-in-limit-except?ok=1", Token("blocked", OtherKey));
        HttpReply notOkPut = await Nginx.SendAsync(HttpMethod.Put, "/everything-in-limit-except", Token(key: OtherKey));

        Assert.That(otherKeyGet.Status, Is.EqualTo(401), "the limit_except key is not used for GET");
        Assert.That(otherKeyPut.Status, Is.EqualTo(200), otherKeyPut.ToString());
        Assert.That(expiredPut.Status, Is.EqualTo(200), "validate_exp off inside limit_except");
        Assert.That(blockedPut.Status, Is.EqualTo(401), "revocation list inside limit_except");
        Assert.That(notOkPut.Status, Is.EqualTo(403), "auth_jwt_require error=403 inside limit_except");
    }

    [Test]
    public async Task Auth_jwt_off_in_limit_except_opens_the_other_methods()
    {
        Assert.That((await Nginx.GetAsync("/reads-open")).Status, Is.EqualTo(200));
        Assert.That((await Nginx.SendAsync(HttpMethod.Post, "/reads-open")).Status, Is.EqualTo(401));
    }
}
