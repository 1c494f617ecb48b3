using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Harness;
using NginxOAuth.IntegrationTests.Tokens;
using NUnit.Framework;
using static NginxOAuth.IntegrationTests.Harness.ProviderKeys;

namespace NginxOAuth.IntegrationTests.Hybrid;

/// <summary>
/// auth_jwt_introspect beside auth_jwt_provider: the providers' issuers are
/// the issuers the location names.  A JWS whose unverified iss is a
/// provider's is verified locally with that provider's keys only (no IdP
/// call, whatever it says); a JWS of any other issuer, or of none, and an
/// opaque token are introspected; with "all" a provider's verified JWS is
/// introspected too.  A location with providers but without the switch
/// still refuses an unknown issuer with 401.  Every test uses its own
/// tokens, so the IdP's counts are its own.
/// </summary>
[TestFixture]
public sealed class HybridProviderTests : HybridFixture
{
    private static readonly SigningKey Stranger = AlgVariant.Get("RS256").Key(23);

    protected override void StartGateway(NginxInstance nginx)
    {
        string a = ProviderKeys.Serve(nginx, KeyServer);
        string echo = nginx.Echo("path=$oauth_token_path provider=$jwt_provider jwt=$jwt_claim_sub "
            + "oauth2=$oauth2_token_sub.");
        string providers = $"auth_jwt_provider {IssA} key_file={a}; auth_jwt_provider {IssB} key_request=/_keys/b/certs;";
        nginx.Start(Gateway(nginx, "hybrid_providers", string.Join('\n',
            HybridLocation("/opaque", providers, "opaque", echo),
            HybridLocation("/all", providers, "all", echo),
            $$"""
            location /jwt-only {
                auth_jwt "api";
                {{providers}}
                {{PathHeader}}
                {{echo}}
            }
            """)));
    }

    private static string Token(SigningKey key, string? iss, string sub) => ProviderKeys.Token(key, iss, sub: sub);

    [Test]
    public async Task A_JWT_of_provider_A_is_verified_locally_without_an_IdP_call()
    {
        string token = Token(KeyA, IssA, "hp-a");
        Idp.Revoke(token); // the IdP would refuse it: it is not asked

        HttpReply reply = await Nginx.GetAsync("/opaque", token);
        HttpReply again = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=jwt provider={IssA} jwt=hp-a oauth2=."));
        Assert.That(PathOf(reply), Is.EqualTo("[jwt]"));
        Assert.That(again.Status, Is.EqualTo(200), again.ToString());
        Assert.That(Introspections(token), Is.Zero, "a provider's JWS never reaches the IdP");
    }

    [Test]
    public async Task A_JWT_of_provider_B_is_verified_locally_with_its_key_request()
    {
        string token = Token(KeyB, IssB, "hp-b");

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=jwt provider={IssB} jwt=hp-b oauth2=."));
        Assert.That(Introspections(token), Is.Zero);
        Assert.That(KeyServer.Count("/b/certs"), Is.GreaterThanOrEqualTo(1), "B's keys came from its key request");
    }

    [Test]
    public async Task A_JWT_of_an_issuer_that_is_no_provider_is_introspected()
    {
        string token = Token(Stranger, "https://other.example", "hp-other");

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=introspection provider= jwt= oauth2=user-{token}."));
        Assert.That(PathOf(reply), Is.EqualTo("[introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task A_JWT_without_iss_is_introspected_as_it_names_no_provider()
    {
        string token = Token(KeyA, null, "hp-noiss");

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(PathOf(reply), Is.EqualTo("[introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task An_opaque_token_is_introspected()
    {
        const string token = "hybrid-providers-opaque";

        HttpReply reply = await Nginx.GetAsync("/opaque", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=introspection provider= jwt= oauth2=user-{token}."));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [TestCase("/opaque", TestName = "A_JWT_claiming_provider_B_but_signed_by_A_is_refused_without_an_IdP_call")]
    [TestCase("/all", TestName = "With_all_a_JWT_claiming_provider_B_but_signed_by_A_is_refused_before_introspection")]
    public async Task Forged_provider_jwt_is_refused(string location)
    {
        string token = Token(KeyA, IssB, "hp-forged" + location.Replace('/', '-'));

        HttpReply reply = await Nginx.GetAsync(location, token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(reply.Challenge, Is.EqualTo("Bearer realm=\"api\", error=\"invalid_token\""),
            "auth_jwt's challenge, once");
        Assert.That(PathOf(reply), Is.EqualTo("[jwt]"));
        Assert.That(Introspections(token), Is.Zero, "a provider's JWS has no second chance at the IdP");
    }

    [Test]
    public async Task With_all_a_JWT_of_provider_A_is_verified_and_introspected()
    {
        string token = Token(KeyA, IssA, "hp-all");

        HttpReply reply = await Nginx.GetAsync("/all", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=jwt+introspection provider={IssA} jwt=hp-all oauth2=user-{token}."));
        Assert.That(PathOf(reply), Is.EqualTo("[jwt+introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task With_all_a_JWT_of_provider_A_the_IdP_says_is_inactive_is_refused()
    {
        string token = Token(KeyA, IssA, "hp-all-revoked");
        Idp.Revoke(token);

        HttpReply reply = await Nginx.GetAsync("/all", token);

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(PathOf(reply), Is.EqualTo("[jwt+introspection]"));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task With_all_a_JWT_of_an_issuer_that_is_no_provider_is_introspected_only()
    {
        string token = Token(Stranger, "https://other.example", "hp-all-other");

        HttpReply reply = await Nginx.GetAsync("/all", token);

        Assert.That(reply.Status, Is.EqualTo(200), reply.ToString());
        Assert.That(reply.Body, Is.EqualTo($"path=introspection provider= jwt= oauth2=user-{token}."));
        Assert.That(Introspections(token), Is.EqualTo(1));
    }

    [Test]
    public async Task Without_the_switch_a_JWT_of_an_issuer_that_is_no_provider_is_401()
    {
        string token = Token(Stranger, "https://other.example", "hp-jwt-only");

        HttpReply reply = await Nginx.GetAsync("/jwt-only", token);
        HttpReply a = await Nginx.GetAsync("/jwt-only", Token(KeyA, IssA, "hp-jwt-only-a"));

        Assert.That(reply.Status, Is.EqualTo(401), reply.ToString());
        Assert.That(Introspections(token), Is.Zero);
        Assert.That(a.Status, Is.EqualTo(200), a.ToString());
        Assert.That(a.Body, Is.EqualTo($"path=jwt provider={IssA} jwt=hp-jwt-only-a oauth2=."));
    }
}

/// <summary>auth_jwt_introspect with auth_jwt_provider at nginx -t: providers are a key source; location keys beside them stay an error.</summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public sealed class HybridProviderConfigTests
{
    [Test]
    public void Providers_are_the_key_source_of_a_hybrid_location()
    {
        using var nginx = new NginxInstance("hybrid-provider-config");
        HybridConfig.Configure(nginx, "auth_jwt api;\nauth_jwt_provider https://a.example key_file=keys.jwks;\n"
            + "auth_oauth2_token_introspect on;\nauth_jwt_introspect opaque;");

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
    }

    [Test]
    public void Inherited_providers_are_the_key_source_of_a_hybrid_location()
    {
        using var nginx = new NginxInstance("hybrid-provider-config");
        HybridConfig.Configure(nginx, "auth_jwt api;\nauth_oauth2_token_introspect on;\nauth_jwt_introspect all;",
            "auth_jwt_provider https://a.example key_file=keys.jwks;");

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.EqualTo(0), result.Output);
    }

    [Test]
    public void A_key_file_beside_providers_in_a_hybrid_location_is_refused_by_nginx_t()
    {
        using var nginx = new NginxInstance("hybrid-provider-config");
        HybridConfig.Configure(nginx, "auth_jwt api;\nauth_jwt_key_file keys.jwks;\n"
            + "auth_jwt_provider https://a.example key_file=keys.jwks;\n"
            + "auth_oauth2_token_introspect on;\nauth_jwt_introspect opaque;");
        int line = nginx.LineOf("auth_jwt_provider https://a.example");

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("[emerg]"));
        Assert.That(result.Output, Does.Contain("keys belong to the providers"));
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{line}"));
    }

    [Test]
    public void A_hybrid_location_without_keys_or_providers_names_providers_in_its_error()
    {
        using var nginx = new NginxInstance("hybrid-provider-config");
        HybridConfig.Configure(nginx, "auth_jwt api;\nauth_oauth2_token_introspect on;\nauth_jwt_introspect opaque;");
        int line = nginx.LineOf("auth_jwt_introspect opaque;");

        ConfigTestResult result = nginx.TestConfig();

        Assert.That(result.ExitCode, Is.Not.EqualTo(0), result.Output);
        Assert.That(result.Output, Does.Contain("needs a key source"));
        Assert.That(result.Output, Does.Contain("auth_jwt_provider"));
        Assert.That(result.Output, Does.Contain($"{nginx.ConfigPath}:{line}"));
    }
}
