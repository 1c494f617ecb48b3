using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;

namespace NginxOAuth.IntegrationTests.Tests;

/// <summary>
/// Configuration mistakes are refused by nginx -t with a message that names
/// the directive and the file:line of the directive.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class ConfigErrorTests
{
    /// <summary>Where the directive goes.</summary>
    public enum Place
    {
        Http,
        Server,
        Location,
        LimitExcept,
    }

    public sealed record Case(string Directive, string Name, string[] Contains, Place Where = Place.Location,
        IReadOnlyDictionary<string, string>? Files = null);

    private static string Jwks(JsonObject key) => TokenFactory.Jwks(key);

    private static JsonObject Rsa1024Jwk()
    {
        using var rsa = RSA.Create(1024);
        return new RsaSigningKey("RS256", "small", rsa).Jwk();
    }

    private static Dictionary<string, string> File(string name, string content) => new() { [name] = content };

    public static IEnumerable<TestCaseData> Cases()
    {
        SigningKey rsa = AlgVariant.Get("RS256").Key();
        SigningKey ec = AlgVariant.Get("ES256").Key();
        JsonObject xs999 = rsa.Jwk(alg: "XS999");
        JsonObject badKty = rsa.Jwk();
        badKty["kty"] = "XYZ";
        JsonObject badCrv = ec.Jwk();
        badCrv["crv"] = "P-999";
        JsonObject badN = rsa.Jwk();
        badN["n"] = "!!not-base64url!!";
        JsonObject emptyKid = rsa.Jwk(kid: "");
        emptyKid["kid"] = "";
        string manyKeys = TokenFactory.Jwks(Enumerable.Range(0, 257)
            .Select(i => new HmacSigningKey("HS256", $"k{i}", new byte[32]).Jwk()).ToArray());
        string hugeKeys = "{\"keys\":[" + new string(' ', 1100 * 1024) + "]}";
        // private RSA and P-256/384/521 keys are JWE decryption keys now;
        // a secp256k1 private key is neither a public key nor a JWE key
        using var privateKey = ECDsa.Create(ECCurve.CreateFromValue("1.3.132.0.10"));

        var cases = new Dictionary<string, Case>
        {
            ["Missing key file"] = new("auth_jwt_key_file missing.jwks;", "auth_jwt_key_file", ["missing.jwks"]),
            ["Key file that is a directory"] = new("auth_jwt_key_file adir;", "auth_jwt_key_file", ["adir"],
                Files: File("adir/", "")),
            ["Key file that is not JSON"] = new("auth_jwt_key_file bad.jwks;", "auth_jwt_key_file", ["invalid JSON"],
                Files: File("bad.jwks", "{\"keys\": [ {\"kty\": ")),
            ["Key file that is a JSON array"] = new("auth_jwt_key_file array.jwks;", "auth_jwt_key_file", ["array.jwks"],
                Files: File("array.jwks", "[]")),
            ["Key file larger than 1 MiB"] = new("auth_jwt_key_file huge.jwks;", "auth_jwt_key_file", ["larger than"],
                Files: File("huge.jwks", hugeKeys)),
            ["Key file with more than 256 keys"] = new("auth_jwt_key_file many.jwks;", "auth_jwt_key_file", ["too many keys"],
                Files: File("many.jwks", manyKeys)),
            ["Keyval value that is not PEM"] = new("auth_jwt_key_file bad.keyval keyval;", "auth_jwt_key_file", ["not a PEM public key"],
                Files: File("bad.keyval", "{\"k1\": \"not a pem\"}")),
            ["Keyval value that is a private key JWE cannot use"] = new("auth_jwt_key_file private.keyval keyval;", "auth_jwt_key_file", ["not a PEM public key"],
                Files: File("private.keyval", TokenFactory.Json(new JsonObject { ["k1"] = privateKey.ExportPkcs8PrivateKeyPem() }))),
            ["JWK with an unknown alg"] = new("auth_jwt_key_file xs999.jwks;", "auth_jwt_key_file", ["unknown algorithm"],
                Files: File("xs999.jwks", Jwks(xs999))),
            ["JWK with an unknown kty"] = new("auth_jwt_key_file kty.jwks;", "auth_jwt_key_file", ["unknown key type"],
                Files: File("kty.jwks", Jwks(badKty))),
            ["JWK with an unknown curve"] = new("auth_jwt_key_file crv.jwks;", "auth_jwt_key_file", ["unknown curve"],
                Files: File("crv.jwks", Jwks(badCrv))),
            ["JWK with a bad modulus"] = new("auth_jwt_key_file n.jwks;", "auth_jwt_key_file", ["key parameter"],
                Files: File("n.jwks", Jwks(badN))),
            ["RSA 1024 JWK"] = new("auth_jwt_key_file rsa1024.jwks;", "auth_jwt_key_file", ["RSA key shorter than 2048 bits"],
                Files: File("rsa1024.jwks", Jwks(Rsa1024Jwk()))),
            ["HMAC key shorter than its hash"] = new("auth_jwt_key_file short.jwks;", "auth_jwt_key_file", ["HMAC key shorter than its hash"],
                Files: File("short.jwks", Jwks(new HmacSigningKey("HS256", "short", new byte[16]).Jwk()))),
            ["HMAC key pinned to a longer hash"] = new("auth_jwt_key_file pinned-short.jwks;", "auth_jwt_key_file", ["HMAC key shorter than its hash"],
                Files: File("pinned-short.jwks", Jwks(new HmacSigningKey("HS512", "short", new byte[32]).Jwk(alg: "HS512")))),
            ["JWK alg that does not fit its key type"] = new("auth_jwt_key_file mismatch.jwks;", "auth_jwt_key_file", ["alg does not match the key type"],
                Files: File("mismatch.jwks", Jwks(ec.Jwk(alg: "RS256")))),
            ["JWK with an empty kid"] = new("auth_jwt_key_file emptykid.jwks;", "auth_jwt_key_file", ["empty kid"],
                Files: File("emptykid.jwks", Jwks(emptyKid))),
            ["Unknown key file format"] = new("auth_jwt_key_file good.jwks pem;", "auth_jwt_key_file", ["invalid key format", "pem"]),
            ["Unknown key request format"] = new("auth_jwt_key_request /_keys pem;", "auth_jwt_key_request", ["invalid key format"]),
            ["Discovery issuer that is not a URL"] = new("auth_jwt_discovery idp.example.com;", "auth_jwt_discovery", ["http:// or https://"]),
            ["Discovery issuer with a query"] = new("auth_jwt_discovery http://127.0.0.1:1/realm?x=1;", "auth_jwt_discovery", ["invalid character"]),
            ["Discovery with an unknown parameter"] = new("auth_jwt_discovery http://127.0.0.1:1 colour=blue;", "auth_jwt_discovery", ["invalid parameter", "colour=blue"]),
            ["Two discovery issuers in one location"] = new("auth_jwt_discovery http://127.0.0.1:1/a; auth_jwt_discovery http://127.0.0.1:1/b;", "auth_jwt_discovery", ["duplicate", "one issuer per location"]),
            ["Unknown operator in require_claim"] = new("auth_jwt_require_claim iss equals good;", "auth_jwt_require_claim", ["unknown operator", "equals"]),
            ["Unknown operator in require_header"] = new("auth_jwt_require_header alg like RS256;", "auth_jwt_require_header", ["unknown operator", "like"]),
            ["Malformed json= value"] = new("auth_jwt_require_claim iat eq 'json=[1,2';", "auth_jwt_require_claim", ["json=", "invalid JSON"]),
            ["json= value of the wrong type for the operator"] = new("auth_jwt_require_claim roles intersect json=5;", "auth_jwt_require_claim", ["wrong type"]),
            ["json= value of the wrong type for gt"] = new("auth_jwt_require_claim iat gt 'json=\"soon\"';", "auth_jwt_require_claim", ["wrong type"]),
            ["Invalid JQ-like claim path"] = new("auth_jwt_require_claim '.a[' eq x;", "auth_jwt_require_claim", ["invalid claim path"]),
            ["Nested claim path that cannot parse"] = new("auth_jwt_allow_nested; auth_jwt_require_claim 'a.\"b' eq x;", "auth_jwt_require_claim", ["invalid claim path"]),
            ["Require error=200"] = new("auth_jwt_require $arg_a error=200;", "auth_jwt_require", ["error=200"]),
            ["Require error=302"] = new("auth_jwt_require $arg_a error=302;", "auth_jwt_require", ["error=302"]),
            ["Require error=444"] = new("auth_jwt_require $arg_a error=444;", "auth_jwt_require", ["error=444"]),
            ["Require error=499"] = new("auth_jwt_require $arg_a error=499;", "auth_jwt_require", ["error=499"]),
            ["Require error=600"] = new("auth_jwt_require $arg_a error=600;", "auth_jwt_require", ["error=600"]),
            ["Require error=abc"] = new("auth_jwt_require $arg_a error=abc;", "auth_jwt_require", ["error=abc"]),
            ["Require value that does not start with a variable"] = new("auth_jwt_require valid;", "auth_jwt_require", ["must start with a variable"]),
            ["Revocation list that is not JSON"] = new("auth_jwt_revocation_list_sub bad-subs.json;", "auth_jwt_revocation_list_sub", ["invalid JSON"],
                Files: File("bad-subs.json", "{\"a\": ")),
            ["Revocation list that is an array"] = new("auth_jwt_revocation_list_kid kids-array.json;", "auth_jwt_revocation_list_kid", ["not a JSON object"],
                Files: File("kids-array.json", "[\"kid1\"]")),
            ["Missing revocation list"] = new("auth_jwt_revocation_list_sub nowhere.json;", "auth_jwt_revocation_list_sub", ["nowhere.json"]),
            ["Claim_set inside a server"] = new("auth_jwt_claim_set $jwt_x sub;", "auth_jwt_claim_set", ["is not allowed here"], Place.Server),
            ["Header_set inside a location"] = new("auth_jwt_header_set $jwt_y kid;", "auth_jwt_header_set", ["is not allowed here"]),
            ["Claim_set with a name that is not a variable"] = new("auth_jwt_claim_set jwt_x sub;", "auth_jwt_claim_set", ["invalid variable name"], Place.Http),
            ["Leeway inside limit_except"] = new("auth_jwt_leeway 5s;", "auth_jwt_leeway", ["is not allowed here"], Place.LimitExcept),
            ["Phase inside limit_except"] = new("auth_jwt_phase preaccess;", "auth_jwt_phase", ["is not allowed here"], Place.LimitExcept),
            ["Unknown phase"] = new("auth_jwt_phase content;", "auth_jwt_phase", ["invalid phase", "content"]),
            ["Leeway that is not a time"] = new("auth_jwt_leeway soon;", "auth_jwt_leeway", ["invalid value"]),
            ["Validate_exp that is not on or off"] = new("auth_jwt_validate_exp maybe;", "auth_jwt_validate_exp", ["invalid value"]),
            ["Token parameter that is not a variable"] = new("auth_jwt \"x\" token=cookie;", "auth_jwt", ["token="], Place.Server),
            ["Unknown auth_jwt parameter"] = new("auth_jwt \"x\" realm=y;", "auth_jwt", ["invalid parameter"], Place.Server),
            ["Duplicate auth_jwt"] = new("auth_jwt \"again\";", "auth_jwt", ["is duplicate"]),
            ["Parameters after auth_jwt off"] = new("auth_jwt off now;", "auth_jwt", ["off"], Place.Server),
            ["Unknown allow_nested parameter"] = new("auth_jwt_allow_nested separator=/;", "auth_jwt_allow_nested", ["invalid parameter"]),
            ["Empty allow_nested delimiter"] = new("auth_jwt_allow_nested delimiter=;", "auth_jwt_allow_nested", ["delimiter"]),
            ["Verify cache without a zone"] = new("auth_jwt_verify_cache max_ttl=10s;", "auth_jwt_verify_cache", ["zone=name:size"]),
            ["Verify cache zone without a size"] = new("auth_jwt_verify_cache zone=vc;", "auth_jwt_verify_cache", ["invalid zone"]),
            ["Verify cache zone that is too small"] = new("auth_jwt_verify_cache zone=vc:4k;", "auth_jwt_verify_cache", ["too small"]),
            ["Verify cache with an invalid max_ttl"] = new("auth_jwt_verify_cache zone=vc:1m max_ttl=soon;", "auth_jwt_verify_cache", ["invalid max_ttl"]),
            ["Verify cache with an unknown parameter"] = new("auth_jwt_verify_cache zone=vc:1m size=2;", "auth_jwt_verify_cache", ["invalid parameter"]),
            ["Nested type without a decryption key"] = new("auth_jwt_type nested;", "auth_jwt_type", ["nested", "no decryption key"]),
            ["Encrypted type whose key file has only public keys"] = new("auth_jwt_type encrypted; auth_jwt_key_file enc-public.jwks;",
                "auth_jwt_type", ["encrypted", "no decryption key"],
                Files: File("enc-public.jwks", TokenFactory.Jwks(rsa.Jwk(kid: "enc", use: "enc"), rsa.Jwk()))),
            ["Key file of public encryption keys only"] = new("auth_jwt_type encrypted; auth_jwt_key_file enc-only.jwks;",
                "auth_jwt_key_file", ["key #0: encryption key"],
                Files: File("enc-only.jwks", Jwks(rsa.Jwk(use: "enc")))),
            ["Unknown token type"] = new("auth_jwt_type jwe;", "auth_jwt_type", ["invalid type \"jwe\""]),
            ["Duplicate type"] = new("auth_jwt_type signed; auth_jwt_type nested;", "auth_jwt_type", ["is duplicate"]),
            ["Key zone that is too small"] = new("auth_jwt_key_zone 16k;", "auth_jwt_key_zone", ["too small", "8 pages"], Place.Http),
            ["Key zone that is not a size"] = new("auth_jwt_key_zone big;", "auth_jwt_key_zone", ["invalid size", "big"], Place.Http),
            ["Key zone inside a server"] = new("auth_jwt_key_zone 1m;", "auth_jwt_key_zone", ["is not allowed here"], Place.Server),
            ["Key zone inside a location"] = new("auth_jwt_key_zone 1m;", "auth_jwt_key_zone", ["is not allowed here"]),
            ["Duplicate key zone"] = new("auth_jwt_key_zone 1m; auth_jwt_key_zone 2m;", "auth_jwt_key_zone", ["is duplicate"], Place.Http),
            ["Duplicate verify cache"] = new("auth_jwt_verify_cache zone=va:1m; auth_jwt_verify_cache zone=vb:1m;", "auth_jwt_verify_cache", ["is duplicate"]),
        };

        foreach ((string name, Case c) in cases)
        {
            yield return new TestCaseData(c).SetName($"Config error is refused by nginx -t: {name}");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Config_error(Case c)
    {
        using var nginx = new NginxInstance("config");
        nginx.WriteFile("good.jwks", TokenFactory.Jwks(AlgVariant.Get("RS256").Key()));
        foreach ((string name, string content) in c.Files ?? new Dictionary<string, string>())
        {
            if (name.EndsWith('/'))
            {
                Directory.CreateDirectory(Path.Combine(nginx.Directory, name));
            }
            else
            {
                nginx.WriteFile(name, content);
            }
        }

        nginx.Configure(Config(nginx, c.Directive, c.Where));
        int line = nginx.LineOf(c.Directive);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain($"\"{c.Name}\""), "the message names the directive");
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{line}"), "the message gives the directive's file:line");
        foreach (string part in c.Contains)
        {
            Assert.That(result.Output, Does.Contain(part));
        }

        Assert.That(result.Output, Does.Contain("test failed"));
    }

    [Test]
    public void Auth_jwt_without_any_key_warns_at_the_line_of_its_location()
    {
        using var nginx = new NginxInstance("config");
        nginx.Configure($$"""
            server {
                listen 127.0.0.1:{{nginx.Port}};
                location /keyless {
                    auth_jwt "keyless";
                    {{nginx.Echo("x")}}
                }
            }
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        string warn = result.Output.Split('\n').Single(l => l.Contains("[warn]", System.StringComparison.Ordinal));
        Assert.That(warn, Does.Contain("auth_jwt"));
        Assert.That(warn, Does.Contain($"{nginx.ConfigPath}:{nginx.LineOf("auth_jwt \"keyless\"")}"),
            "the warning points at the auth_jwt directive, not at the end of the http block");
    }

    [Test]
    public void Valid_configuration_with_every_directive_passes_nginx_t()
    {
        using var nginx = new NginxInstance("config");
        nginx.WriteFile("keys.jwks", Keys.DefaultJwks);
        nginx.WriteFile("keys.keyval", TokenFactory.Keyval(AlgVariant.Get("EdDSA-Ed448").Key()));
        nginx.WriteFile("subs.json", "{\"s\":1}");
        nginx.WriteFile("kids.json", "{\"k\":1}");
        nginx.WriteFile("decrypt.jwks", TokenFactory.Jwks(JweFactory.OctJwk(new byte[32], "dir")));
        nginx.Configure($$"""
            auth_jwt_claim_set $jwt_email info email;
            auth_jwt_header_set $jwt_kid kid;
            map $jwt_claim_iss $iss_ok { good 1; default 0; }

            server {
                listen 127.0.0.1:{{nginx.Port}};
                auth_jwt "all" token=$cookie_t;
                auth_jwt_key_file keys.jwks;
                auth_jwt_key_file keys.keyval keyval;
                auth_jwt_leeway 30s;
                auth_jwt_phase preaccess;
                auth_jwt_validate_exp on;
                auth_jwt_validate_sig on;
                auth_jwt_allow_nested delimiter=/ quote=|;
                auth_jwt_verify_cache zone=jwt:1m max_ttl=60s;

                location / {
                    auth_jwt_key_request /_keys jwks;
                    auth_jwt_key_request /_keyval keyval;
                    auth_jwt_revocation_list_sub subs.json;
                    auth_jwt_revocation_list_kid kids.json;
                    auth_jwt_require $iss_ok error=403;
                    auth_jwt_require_claim a/b eq x;
                    auth_jwt_require_claim n ge json=3;
                    auth_jwt_require_claim roles intersect $http_x_roles;
                    auth_jwt_require_header alg in 'json=["RS256","ES256"]';
                    limit_except GET {
                        auth_jwt_require_claim role eq admin;
                    }
                    {{nginx.Echo("$jwt_claim_sub $jwt_header_alg $jwt_claims $jwt_nowtime $jwt_email $jwt_kid")}}
                }

                location /nested {
                    auth_jwt_type nested;
                    auth_jwt_key_file decrypt.jwks;
                    {{nginx.Echo("$jwt_payload")}}
                }

                location /_keys { internal; auth_jwt off; proxy_pass http://127.0.0.1:1/; }
                location /_keyval { internal; auth_jwt off; proxy_pass http://127.0.0.1:1/; }
            }

            # after the servers: the key zone's size is read when they merge
            auth_jwt_key_zone 1m;
            """);

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("test is successful"));
        Assert.That(result.Output, Does.Not.Contain("[emerg]").And.Not.Contain("[alert]"));
    }

    private static string Config(NginxInstance nginx, string directive, Place where)
    {
        var sb = new StringBuilder();
        if (where == Place.Http)
        {
            sb.AppendLine(directive);
        }

        sb.AppendLine("server {");
        sb.AppendLine($"    listen 127.0.0.1:{nginx.Port};");
        if (where == Place.Server)
        {
            sb.AppendLine("    " + directive);
        }

        sb.AppendLine("    location / {");
        sb.AppendLine("        auth_jwt \"cfg\";");
        sb.AppendLine("        auth_jwt_key_file good.jwks;");
        if (where == Place.Location)
        {
            sb.AppendLine("        " + directive);
        }

        if (where == Place.LimitExcept)
        {
            sb.AppendLine("        limit_except GET {");
            sb.AppendLine("            " + directive);
            sb.AppendLine("        }");
        }

        sb.AppendLine("        " + nginx.Echo("$jwt_claim_sub"));
        sb.AppendLine("    }");
        sb.AppendLine("}");
        return sb.ToString();
    }
}
