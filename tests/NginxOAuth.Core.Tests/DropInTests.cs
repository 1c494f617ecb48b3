using System.Security.Cryptography;
using System.Text;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// What configurations written for nginx-auth-jwt need: keys we will not use
/// are skipped (not fatal), the "!" prefix on every operator, match, any,
/// empty revocation lists.
/// </summary>
public sealed class DropInTests
{
    private static readonly RSA Rsa2048 = RSA.Create(2048);

    private static string Oct(int bytes, string? kid = null, string? alg = null) =>
        T.OctJwk(new byte[bytes].Fill(0x41), kid, alg);

    // ---- skipped keys -----------------------------------------------------

    [Test]
    public void Weak_and_unknown_keys_are_skipped_and_the_rest_loads()
    {
        using RSA small = RSA.Create(1024);
        KeySetResult result = KeySetLoader.Load(T.U(T.Jwks(
            Oct(12, "short", "HS256"),
            T.RsaJwk(small, "rsa1024"),
            "{\"kty\":\"XYZ\",\"kid\":\"odd\"}",
            "{\"kty\":\"EC\",\"crv\":\"P-192\",\"kid\":\"p192\",\"x\":\"QUFB\",\"y\":\"QUFB\"}",
            T.RsaJwk(Rsa2048, "enc", use: "enc"),
            "{\"kty\":\"oct\"}",
            T.OctJwk(T.HmacSecret, "good", "HS256"))), KeySetFormat.Jwks);

        Assert.That(result.Error, Is.EqualTo(ConfigError.None));
        using KeySet keys = result.KeySet!;
        Assert.That(keys.Count, Is.EqualTo(1));
        Assert.That(keys.Skipped, Has.Count.EqualTo(6));
        Assert.That(keys.Skipped[0], Is.EqualTo(keys.Skipped[0] with { Index = 0, Reason = ConfigError.KeyHmacTooShort }));
        Assert.That(Encoding.UTF8.GetString(keys.Skipped[0].Kid!), Is.EqualTo("short"));
        Assert.That(keys.Skipped[1].Reason, Is.EqualTo(ConfigError.KeyRsaTooSmall));
        Assert.That(keys.Skipped[2].Reason, Is.EqualTo(ConfigError.KeyUnknownKty));
        Assert.That(keys.Skipped[3].Reason, Is.EqualTo(ConfigError.KeyUnknownCurve));
        Assert.That(keys.Skipped[4].Reason, Is.EqualTo(ConfigError.KeyForEncryption));
        Assert.That(keys.Skipped[5].Index, Is.EqualTo(5));
        Assert.That(keys.Skipped[5].Kid, Is.Null);
    }

    [Test]
    public void Set_of_encryption_keys_only_has_no_usable_key()
    {
        KeySetResult result = KeySetLoader.Load(T.U(T.Jwks(T.RsaJwk(Rsa2048, "enc", use: "enc"))), KeySetFormat.Jwks);
        Assert.That(result.Error, Is.EqualTo(ConfigError.KeyForEncryption));
        Assert.That(result.Detail, Is.EqualTo(0));
    }

    [Test]
    public void Token_that_needs_a_skipped_key_is_rejected_with_the_reason()
    {
        using KeySet keys = T.Keys(T.Jwks(Oct(12, "short", "HS256"), T.OctJwk(T.HmacSecret, "good", "HS256")));
        string token = T.Token("{\"alg\":\"HS256\",\"kid\":\"short\"}", "{\"exp\":2000000000}",
            T.Hmac(JwsAlgorithm.HS256, new byte[12].Fill(0x41)));

        VerifyResult result = T.Verify(T.Policy(keys), token);

        Assert.That(result.Error, Is.EqualTo(TokenError.KeySkipped));
        Assert.That(result.Detail, Is.EqualTo((int)ConfigError.KeyHmacTooShort));
    }

    [Test]
    public void Token_signed_by_a_loaded_key_of_a_set_with_skipped_keys_verifies()
    {
        using KeySet keys = T.Keys(T.Jwks(Oct(12, "short", "HS256"), T.OctJwk(T.HmacSecret, "good", "HS256")));
        string token = T.Token("{\"alg\":\"HS256\",\"kid\":\"good\"}", "{\"exp\":2000000000}",
            T.Hmac(JwsAlgorithm.HS256, T.HmacSecret));

        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Token_with_an_unknown_kid_is_not_blamed_on_a_skipped_key()
    {
        using KeySet keys = T.Keys(T.Jwks(Oct(12, "short", "HS256"), T.OctJwk(T.HmacSecret, "good", "HS256")));
        string token = T.Token("{\"alg\":\"HS256\",\"kid\":\"other\"}", "{\"exp\":2000000000}",
            T.Hmac(JwsAlgorithm.HS256, T.HmacSecret));

        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.KeyNotFound));
    }

    [Test]
    public void Token_whose_kid_has_a_loaded_key_too_is_a_bad_signature_not_a_skipped_key()
    {
        using KeySet weak = T.Keys(T.Jwks(Oct(12, "k", "HS256"), T.OctJwk(T.HmacSecret, "other", "HS256")));
        using KeySet good = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret, "k", "HS256")));
        VerificationPolicy policy = T.Policy(weak);
        policy.AddKeySet(good);
        string forged = T.Token("{\"alg\":\"HS256\",\"kid\":\"k\"}", "{\"exp\":2000000000}",
            T.Hmac(JwsAlgorithm.HS256, new byte[32]));

        Assert.That(T.VerifyError(policy, forged), Is.EqualTo(TokenError.BadSignature));
    }

    // ---- operators ----------------------------------------------------------

    private const string Payload =
        "{\"exp\":2000000000,\"name\":\"John Doe\",\"iat\":1516239022,\"roles\":[\"dev\",\"ops\"],\"r\":1.5,"
        + "\"sub\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"}";

    private static TokenError Check(string path, RuleOperator op, bool negate, RuleValueKind kind, string value)
    {
        using KeySet keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret, "k1")));
        VerificationPolicy policy = T.Policy(keys);
        Assert.That(policy.AddRule(RuleTarget.Claim, T.U(path), op, negate, kind, T.U(value)), Is.EqualTo(ConfigError.None));
        return T.VerifyError(policy, T.Token("{\"alg\":\"HS256\",\"kid\":\"k1\"}", Payload, T.Hmac(JwsAlgorithm.HS256, T.HmacSecret)));
    }

    private const RuleValueKind S = RuleValueKind.String;
    private const RuleValueKind J = RuleValueKind.Json;

    [TestCase("name", RuleOperator.Match, false, S, "^John", true, TestName = "Match_with_a_caret_anchor")]
    [TestCase("name", RuleOperator.Match, false, S, "^Alice", false, TestName = "Match_that_does_not_match_fails")]
    [TestCase("name", RuleOperator.Match, false, S, "Doe", true, TestName = "Match_finds_a_partial_match")]
    [TestCase("name", RuleOperator.Match, false, S, "Doe\\z", true, TestName = "Match_with_an_end_anchor")]
    [TestCase("name", RuleOperator.Match, false, S, "John\\z", false, TestName = "Match_end_anchor_mismatch_fails")]
    [TestCase("name", RuleOperator.Match, false, S, "\\AJohn Doe\\z", true, TestName = "Match_fully_anchored")]
    [TestCase("name", RuleOperator.Match, false, J, "\"John .+\"", true, TestName = "Match_json_string_pattern")]
    [TestCase("name", RuleOperator.Match, true, S, "^Alice", true, TestName = "Not_match_passes_when_it_does_not_match")]
    [TestCase("name", RuleOperator.Match, true, S, "^John", false, TestName = "Not_match_fails_when_it_matches")]
    [TestCase("iat", RuleOperator.Match, false, S, "^[0-9]+", false, TestName = "Match_on_a_number_claim_fails")]
    [TestCase("iat", RuleOperator.Match, true, S, "^[0-9]+", false, TestName = "Not_match_on_a_number_claim_fails_too")]
    [TestCase("sub", RuleOperator.Match, false, S, "^(a+)+\\z", false, TestName = "Backtracking_pattern_runs_in_linear_time_and_fails")]
    [TestCase("name", RuleOperator.Eq, true, J, "\"Not John Doe\"", true, TestName = "Not_eq_passes_when_different")]
    [TestCase("name", RuleOperator.Eq, true, J, "\"John Doe\"", false, TestName = "Not_eq_fails_when_equal")]
    [TestCase("name", RuleOperator.In, true, J, "[\"Alice\",\"Bob\"]", true, TestName = "Not_in_passes_when_absent")]
    [TestCase("name", RuleOperator.In, true, J, "[\"John Doe\",\"Alice\"]", false, TestName = "Not_in_fails_when_present")]
    [TestCase("iat", RuleOperator.Gt, true, J, "9999999999", true, TestName = "Not_gt_passes_when_not_greater")]
    [TestCase("iat", RuleOperator.Gt, true, J, "100", false, TestName = "Not_gt_fails_when_greater")]
    [TestCase("iat", RuleOperator.Ge, true, J, "9999999999", true, TestName = "Not_ge_passes_when_less")]
    [TestCase("iat", RuleOperator.Lt, true, J, "100", true, TestName = "Not_lt_passes_when_not_less")]
    [TestCase("iat", RuleOperator.Le, true, J, "100", true, TestName = "Not_le_passes_when_greater")]
    [TestCase("name", RuleOperator.Gt, true, J, "100", false, TestName = "Not_gt_on_a_string_claim_is_an_error_not_a_pass")]
    [TestCase("roles", RuleOperator.Intersect, true, J, "[\"admin\"]", true, TestName = "Not_any_passes_without_a_common_element")]
    [TestCase("roles", RuleOperator.Intersect, true, J, "[\"ops\"]", false, TestName = "Not_any_fails_with_a_common_element")]
    [TestCase("roles", RuleOperator.NIntersect, true, J, "[\"ops\"]", true, TestName = "Not_nintersect_is_intersect")]
    [TestCase("roles", RuleOperator.Ne, true, J, "[\"dev\",\"ops\"]", true, TestName = "Not_ne_is_eq")]
    [TestCase("missing", RuleOperator.Eq, true, J, "1", false, TestName = "Negated_rule_on_a_missing_claim_fails")]
    public void Operator(string path, RuleOperator op, bool negate, RuleValueKind kind, string value, bool pass)
    {
        Assert.That(Check(path, op, negate, kind, value), Is.EqualTo(pass ? TokenError.None : TokenError.ClaimFailed));
    }

    [TestCase(RuleValueKind.Json, "123", ConfigError.ValueTypeInvalid, TestName = "Match_json_number_is_refused")]
    [TestCase(RuleValueKind.Json, "{}", ConfigError.ValueTypeInvalid, TestName = "Match_json_object_is_refused")]
    [TestCase(RuleValueKind.String, "(unclosed", ConfigError.PatternInvalid, TestName = "Match_pattern_that_does_not_compile_is_refused")]
    public void Match_value_is_checked_when_added(RuleValueKind kind, string value, ConfigError error)
    {
        VerificationPolicy policy = T.Policy();
        Assert.That(policy.AddRule(RuleTarget.Claim, T.U("name"), RuleOperator.Match, false, kind, T.U(value)), Is.EqualTo(error));
    }

    [Test]
    public void Match_pattern_over_1024_bytes_is_refused()
    {
        VerificationPolicy policy = T.Policy();
        Assert.That(policy.AddRule(RuleTarget.Claim, T.U("name"), RuleOperator.Match, false, S, T.U(new string('a', 1025))),
            Is.EqualTo(ConfigError.PatternInvalid));
    }

    [TestCase("\"^John\"", false, TokenError.None, TestName = "Match_variable_pattern_passes")]
    [TestCase("\"(unclosed\"", false, TokenError.ClaimFailed, TestName = "Match_variable_pattern_that_does_not_compile_fails")]
    [TestCase("\"(unclosed\"", true, TokenError.ClaimFailed, TestName = "Not_match_variable_pattern_that_does_not_compile_fails_too")]
    [TestCase("42", true, TokenError.ClaimFailed, TestName = "Not_match_variable_that_is_not_a_string_fails")]
    public void Match_with_a_variable_pattern(string value, bool negate, TokenError error)
    {
        using KeySet keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret, "k1")));
        VerificationPolicy policy = T.Policy(keys);
        Assert.That(policy.AddRule(RuleTarget.Claim, T.U("name"), RuleOperator.Match, negate, RuleValueKind.Variable, default),
            Is.EqualTo(ConfigError.None));
        string token = T.Token("{\"alg\":\"HS256\",\"kid\":\"k1\"}", Payload, T.Hmac(JwsAlgorithm.HS256, T.HmacSecret));
        Assert.That(T.Verify(policy, token, values: [T.U(value)]).Error, Is.EqualTo(error));
    }

    [Test]
    public void Backtracking_pattern_that_runs_out_of_time_is_a_limit_error()
    {
        // a backreference needs the backtracking engine, which has a timeout
        using KeySet keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret, "k1")));
        VerificationPolicy policy = T.Policy(keys);
        Assert.That(policy.AddRule(RuleTarget.Claim, T.U("sub"), RuleOperator.Match, true, S, T.U("^(a|aa|\\1)+(?=b)")),
            Is.EqualTo(ConfigError.None));
        string payload = "{\"exp\":2000000000,\"sub\":\"" + new string('a', 5000) + "!\"}";
        string token = T.Token("{\"alg\":\"HS256\",\"kid\":\"k1\"}", payload, T.Hmac(JwsAlgorithm.HS256, T.HmacSecret));
        Assert.That(T.VerifyError(policy, token), Is.EqualTo(TokenError.RuleMatchLimit).Or.EqualTo(TokenError.ClaimFailed),
            "never a pass, negated or not");
    }

    // ---- revocation lists --------------------------------------------------

    [Test]
    public void Empty_revocation_list_loads()
    {
        Assert.That(T.Policy().AddRevocation(RevocationKind.Sub, T.U("{}")), Is.EqualTo(ConfigError.None));
    }
}
