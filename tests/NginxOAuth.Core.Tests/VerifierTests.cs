using System;
using System.Collections.Generic;
using System.Text;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>Decoding, limits, order of checks, time claims, key selection and revocation.</summary>
public sealed class VerifierTests
{
    private const string Hs256 = "{\"alg\":\"HS256\"}";
    private const string Claims = "{\"sub\":\"alice\",\"exp\":2000000000}";

    private KeySet _keys = null!;

    [SetUp]
    public void SetUp() => _keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret)));

    [TearDown]
    public void TearDown() => _keys.Dispose();

    private static string Sign(string header, string payload) =>
        T.Token(header, payload, T.Hmac(JwsAlgorithm.HS256, T.HmacSecret));

    private static string Raw(string header, string payload, string signature = "c2ln") =>
        T.B64(header) + "." + T.B64(payload) + "." + signature;

    [Test]
    public void Valid_token_verifies_and_writes_header_then_payload()
    {
        string token = Sign(Hs256, Claims);
        byte[] output = new byte[token.Length];
        VerifyResult result = JwtVerifier.Verify(T.Policy(_keys), T.U(token), T.Now, [], new NoRuleValues(), output);
        Assert.That(result.Error, Is.EqualTo(TokenError.None));
        Assert.That(result.Detail, Is.EqualTo(-1));
        Assert.That(Encoding.UTF8.GetString(output, 0, result.HeaderLength), Is.EqualTo(Hs256));
        Assert.That(Encoding.UTF8.GetString(output, result.HeaderLength, result.PayloadLength), Is.EqualTo(Claims));
    }

    [Test]
    public void Header_and_payload_are_written_when_the_signature_fails()
    {
        string token = Raw(Hs256, Claims);
        VerifyResult result = T.Verify(T.Policy(_keys), token);
        Assert.That(result.Error, Is.EqualTo(TokenError.BadSignature));
        Assert.That(result.HeaderLength, Is.EqualTo(Hs256.Length));
        Assert.That(result.PayloadLength, Is.EqualTo(Claims.Length));
    }

    // ---- checks on decoded parts (verified-token cache hits) ---------------

    [TestCase(Claims, 1_000_000_000L, TokenError.None, TestName = "Decoded_parts_pass_the_checks_after_the_signature")]
    [TestCase(Claims, 2_000_000_000L, TokenError.Expired, TestName = "Decoded_parts_are_expired_by_the_current_time")]
    [TestCase("{\"sub\":\"alice\"}", 1_000_000_000L, TokenError.ExpMissing, TestName = "Decoded_parts_without_exp_fail_validate_exp")]
    [TestCase("[1]", 1_000_000_000L, TokenError.TokenMalformed, TestName = "Decoded_payload_that_is_not_an_object_is_malformed")]
    [TestCase("{\"sub\":", 1_000_000_000L, TokenError.TokenMalformed, TestName = "Decoded_payload_that_is_not_JSON_is_malformed")]
    public void CheckDecoded_runs_every_check_but_the_signature(string payload, long now, TokenError expected)
    {
        VerifyResult result = JwtVerifier.CheckDecoded(T.Policy(_keys), T.U(Hs256), T.U(payload), now,
            new NoRuleValues());
        Assert.That(result.Error, Is.EqualTo(expected));
    }

    [Test]
    public void CheckDecoded_rejects_alg_none_headers()
    {
        VerifyResult result = JwtVerifier.CheckDecoded(T.Policy(_keys), T.U("{\"alg\":\"none\"}"), T.U(Claims),
            1_000_000_000L, new NoRuleValues());
        Assert.That(result.Error, Is.EqualTo(TokenError.AlgNone));
    }

    // ---- alg none and crit ------------------------------------------------

    [TestCase(true, TestName = "Alg_none_is_rejected_with_signature_checks_on")]
    [TestCase(false, TestName = "Alg_none_is_rejected_even_with_signature_checks_off")]
    public void Alg_none_is_always_rejected(bool validateSig)
    {
        VerificationPolicy policy = T.Policy(_keys, sig: validateSig);
        string unsigned = T.B64("{\"alg\":\"none\"}") + "." + T.B64(Claims) + ".";
        Assert.That(T.VerifyError(policy, unsigned), Is.EqualTo(TokenError.AlgNone));
        Assert.That(T.VerifyError(policy, Raw("{\"alg\":\"none\"}", Claims)), Is.EqualTo(TokenError.AlgNone));
    }

    [TestCase("{\"typ\":\"JWT\"}", TestName = "Missing_alg_is_unsupported")]
    [TestCase("{\"alg\":\"HS1\"}", TestName = "Unknown_alg_is_unsupported")]
    [TestCase("{\"alg\":\"NONE\"}", TestName = "Upper_case_NONE_is_unsupported")]
    [TestCase("{\"alg\":\"hs256\"}", TestName = "Alg_names_are_case_sensitive")]
    [TestCase("{\"alg\":256}", TestName = "Numeric_alg_is_unsupported")]
    public void Unsupported_alg_is_rejected(string header)
    {
        Assert.That(T.VerifyError(T.Policy(_keys), Raw(header, Claims)), Is.EqualTo(TokenError.AlgUnsupported));
    }

    [TestCase("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", TestName = "Crit_naming_a_header_is_unsupported")]
    [TestCase("{\"alg\":\"HS256\",\"crit\":[]}", TestName = "Empty_crit_is_unsupported")]
    [TestCase("{\"alg\":\"HS256\",\"crit\":\"b64\"}", TestName = "Crit_that_is_not_an_array_is_unsupported")]
    public void Crit_is_rejected_even_with_a_valid_signature(string header)
    {
        Assert.That(T.VerifyError(T.Policy(_keys), Sign(header, Claims)), Is.EqualTo(TokenError.CritUnsupported));
    }

    [Test]
    public void Unsigned_token_passes_when_signature_checks_are_off()
    {
        Assert.That(T.VerifyError(T.Policy(null, sig: false), Raw(Hs256, Claims)), Is.EqualTo(TokenError.None));
    }

    [Test]
    public void No_keys_at_all_is_reported()
    {
        Assert.That(T.VerifyError(T.Policy(null), Sign(Hs256, Claims)), Is.EqualTo(TokenError.NoKeys));
    }

    [Test]
    public void Freed_key_set_verifies_nothing()
    {
        KeySet keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret)));
        VerificationPolicy policy = T.Policy(keys);
        keys.Dispose();
        Assert.That(T.VerifyError(policy, Sign(Hs256, Claims)), Is.EqualTo(TokenError.NoKeys));
    }

    [Test]
    public void Extra_key_sets_are_used()
    {
        VerificationPolicy policy = T.Policy(null);
        Assert.That(T.Verify(policy, Sign(Hs256, Claims), extra: [_keys]).Error, Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Forged_expired_token_reports_the_signature_not_the_expiry()
    {
        string forged = Raw(Hs256, "{\"sub\":\"alice\",\"exp\":1}");
        Assert.That(T.VerifyError(T.Policy(_keys), forged), Is.EqualTo(TokenError.BadSignature));
    }

    // ---- decoding -----------------------------------------------------------

    private static IEnumerable<TestCaseData> Malformed()
    {
        string h = T.B64(Hs256);
        string p = T.B64(Claims);
        TestCaseData Case(string token, string name) => new TestCaseData(token).SetName(name);

        yield return Case("", "Empty_token_is_malformed");
        yield return Case(h + "." + p, "Two_segments_are_malformed");
        yield return Case(h + "." + p + ".c2ln.c2ln", "Four_segments_are_malformed");
        yield return Case(h + "." + p + ".c2ln.c2ln.c2ln", "Five_segment_JWE_is_malformed");
        yield return Case("." + p + ".c2ln", "Empty_header_is_malformed");
        yield return Case(h + "..c2ln", "Empty_payload_is_malformed");
        yield return Case(h + "=." + p + ".c2ln", "Padded_base64_is_malformed");
        yield return Case(h + "." + p.Replace('e', '+') + ".c2ln", "Standard_base64_characters_are_malformed");
        yield return Case(h + " ." + p + ".c2ln", "Whitespace_is_malformed");
        yield return Case(h + "." + p + ".c2l*", "Bad_signature_encoding_is_malformed");
        yield return Case(h + "." + p + "A" + ".c2ln", "Impossible_base64_length_is_malformed");
        yield return Case(T.B64("not json") + "." + p + ".c2ln", "Header_that_is_not_JSON_is_malformed");
        yield return Case(T.B64("[\"HS256\"]") + "." + p + ".c2ln", "Header_that_is_an_array_is_malformed");
        yield return Case(h + "." + T.B64("\"text\"") + ".c2ln", "Payload_that_is_a_string_is_malformed");
        yield return Case(h + "." + T.B64("{\"a\":1,}") + ".c2ln", "Payload_with_a_trailing_comma_is_malformed");
        yield return Case(h + "." + T.B64("{\"a\":1} x") + ".c2ln", "Payload_with_trailing_data_is_malformed");
        yield return Case(h + "." + T.B64("{\"a\":1 /* c */}") + ".c2ln", "Payload_with_a_comment_is_malformed");
        yield return Case(h + "." + T.B64([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]) + ".c2ln", "Payload_with_invalid_UTF8_is_malformed");
        yield return Case(T.B64("{\"alg\":\"HS256\",\"alg\":\"none\"}") + "." + p + ".c2ln", "Duplicate_header_member_is_malformed");
        yield return Case(h + "." + T.B64("{\"sub\":\"a\",\"sub\":\"b\"}") + ".c2ln", "Duplicate_claim_is_malformed");
        yield return Case(h + "." + T.B64("{\"sub\":\"a\",\"s\\u0075b\":\"b\"}") + ".c2ln", "Escaped_duplicate_claim_is_malformed");
        yield return Case(h + "." + T.B64("{\"a\":{\"x\":1,\"y\":2,\"x\":3}}") + ".c2ln", "Nested_duplicate_member_is_malformed");
        yield return Case(h + "." + T.B64(new string('[', 70) + new string(']', 70)) + ".c2ln", "Payload_nested_deeper_than_64_is_malformed");
        yield return Case(T.B64("{\"alg\":\"HS256\",\"kid\":7}") + "." + p + ".c2ln", "Numeric_kid_is_malformed");
    }

    [TestCaseSource(nameof(Malformed))]
    public void Malformed_token_is_rejected(string token)
    {
        Assert.That(T.VerifyError(T.Policy(_keys), token), Is.EqualTo(TokenError.TokenMalformed));
    }

    [Test]
    public void Same_names_in_different_objects_are_not_duplicates()
    {
        string payload = "{\"a\":{\"x\":1},\"b\":{\"x\":2},\"x\":[{\"x\":1},{\"x\":2}],\"exp\":2000000000}";
        Assert.That(T.VerifyError(T.Policy(_keys), Sign(Hs256, payload)), Is.EqualTo(TokenError.None));
    }

    [Test]
    public void Token_over_256_KiB_is_too_large()
    {
        string token = Sign(Hs256, "{\"exp\":2000000000,\"pad\":\"" + new string('x', 200 * 1024) + "\"}");
        Assert.That(token.Length, Is.GreaterThan(Limits.MaxToken));
        Assert.That(T.VerifyError(T.Policy(_keys), token), Is.EqualTo(TokenError.TokenTooLarge));
    }

    [Test]
    public void One_MiB_token_is_rejected_without_allocating()
    {
        byte[] token = new byte[1024 * 1024];
        Array.Fill(token, (byte)'A');
        VerificationPolicy policy = T.Policy(_keys);
        JwtVerifier.Verify(policy, token, T.Now, [], new NoRuleValues(), new byte[token.Length]); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        VerifyResult result = JwtVerifier.Verify(policy, token, T.Now, [], new NoRuleValues(), new byte[16]);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.That(result.Error, Is.EqualTo(TokenError.TokenTooLarge));
        Assert.That(allocated, Is.LessThan(1024));
    }

    [Test]
    public void Header_over_16_KiB_is_too_large()
    {
        string header = "{\"alg\":\"HS256\",\"x\":\"" + new string('x', 17 * 1024) + "\"}";
        Assert.That(T.VerifyError(T.Policy(_keys), Sign(header, Claims)), Is.EqualTo(TokenError.TokenTooLarge));
    }

    [Test]
    public void Large_payload_with_2000_groups_and_32_KiB_of_claims_is_accepted()
    {
        var payload = new StringBuilder("{\"sub\":\"alice\",\"exp\":2000000000,\"groups\":[");
        for (int i = 0; i < 2000; i++)
        {
            payload.Append(i == 0 ? "" : ",").Append("\"group-").Append(i).Append('"');
        }
        payload.Append("],\"blob\":\"").Append('b', 32 * 1024).Append('"');
        for (int i = 0; i < 500; i++)
        {
            payload.Append(",\"claim").Append(i).Append("\":").Append(i);
        }
        payload.Append('}');

        VerificationPolicy policy = T.Policy(_keys);
        Assert.That(policy.AddRule(RuleTarget.Claim, T.U("groups"), RuleOperator.Intersect, RuleValueKind.Json,
            T.U("[\"group-1999\"]")), Is.EqualTo(ConfigError.None));
        Assert.That(T.VerifyError(policy, Sign(Hs256, payload.ToString())), Is.EqualTo(TokenError.None));
    }

    // ---- exp / nbf ----------------------------------------------------------

    private static IEnumerable<TestCaseData> TimeCases()
    {
        TestCaseData Case(string payload, long leeway, bool validateExp, TokenError error, string name) =>
            new TestCaseData(payload, leeway, validateExp, error).SetName(name);

        yield return Case("{\"exp\":1700000001}", 0, true, TokenError.None, "Token_valid_until_its_exp_is_accepted");
        yield return Case("{\"exp\":1700000000}", 0, true, TokenError.Expired, "Expired_token_is_rejected");
        yield return Case("{\"exp\":1699999990}", 10, true, TokenError.Expired, "Token_expired_by_the_leeway_is_rejected");
        yield return Case("{\"exp\":1699999991}", 10, true, TokenError.None, "Token_inside_the_leeway_is_accepted");
        yield return Case("{\"exp\":1700000000.5}", 0, true, TokenError.Expired, "Fractional_exp_is_rounded_down");
        yield return Case("{\"exp\":1700000001.999}", 0, true, TokenError.None, "Fractional_exp_after_now_is_accepted");
        yield return Case("{\"exp\":1e10}", 0, true, TokenError.None, "Exponent_exp_is_a_number");
        yield return Case("{\"exp\":17000000010e-1}", 0, true, TokenError.None, "Exponent_form_exp_after_now_is_accepted");
        yield return Case("{\"exp\":17000000009e-1}", 0, true, TokenError.Expired, "Exponent_form_exp_is_rounded_down");
        yield return Case("{\"exp\":1.7E9}", 0, true, TokenError.Expired, "Exponent_form_exp_of_now_is_expired");
        yield return Case("{\"exp\":1e999}", 0, true, TokenError.TimeInvalid, "Exp_of_1e999_is_not_forever");
        yield return Case("{\"exp\":-1e999}", 0, true, TokenError.TimeInvalid, "Exp_of_minus_1e999_is_invalid");
        yield return Case("{\"exp\":9223372036854775808}", 0, true, TokenError.TimeInvalid, "Exp_of_2_to_the_63_is_invalid");
        yield return Case("{\"exp\":9223372036854775807}", 10, true, TokenError.None, "Largest_exp_with_leeway_does_not_overflow");
        yield return Case("{\"exp\":-9223372036854775808}", 10, true, TokenError.Expired, "Smallest_exp_with_leeway_does_not_overflow");
        yield return Case("{\"exp\":1e999}", 0, false, TokenError.None, "Exp_is_not_read_with_exp_checks_off");
        yield return Case("{\"exp\":2000000000,\"nbf\":-1e999}", 0, true, TokenError.TimeInvalid, "Nbf_of_minus_1e999_is_invalid");
        yield return Case("{\"exp\":2000000000,\"nbf\":1e999}", 0, true, TokenError.TimeInvalid, "Nbf_of_1e999_is_invalid");
        yield return Case("{\"nbf\":-1e999}", 0, false, TokenError.TimeInvalid, "Nbf_range_is_checked_with_exp_checks_off");
        yield return Case("{\"exp\":2000000000,\"nbf\":-9223372036854775808}", 10, true, TokenError.None, "Smallest_nbf_with_leeway_does_not_overflow");
        yield return Case("{\"exp\":2000000000,\"nbf\":-1.5}", 0, true, TokenError.None, "Negative_fractional_nbf_is_in_the_past");
        yield return Case("{\"exp\":2000000000,\"nbf\":17000000010e-1}", 0, true, TokenError.NotYetValid, "Exponent_form_nbf_after_now_is_not_yet_valid");
        yield return Case("{\"sub\":\"a\"}", 0, true, TokenError.ExpMissing, "Missing_exp_is_rejected");
        yield return Case("{\"exp\":\"2000000000\"}", 0, true, TokenError.ExpMissing, "String_exp_is_rejected");
        yield return Case("{\"exp\":null}", 0, true, TokenError.ExpMissing, "Null_exp_is_rejected");
        yield return Case("{\"exp\":1}", 0, false, TokenError.None, "Expired_token_passes_with_exp_checks_off");
        yield return Case("{\"sub\":\"a\"}", 0, false, TokenError.None, "Missing_exp_passes_with_exp_checks_off");
        yield return Case("{\"exp\":2000000000,\"nbf\":1700000001}", 0, true, TokenError.NotYetValid, "Token_before_its_nbf_is_rejected");
        yield return Case("{\"exp\":2000000000,\"nbf\":1700000000}", 0, true, TokenError.None, "Token_at_its_nbf_is_accepted");
        yield return Case("{\"exp\":2000000000,\"nbf\":1700000010}", 10, true, TokenError.None, "Nbf_inside_the_leeway_is_accepted");
        yield return Case("{\"exp\":2000000000,\"nbf\":1700000011}", 10, true, TokenError.NotYetValid, "Nbf_beyond_the_leeway_is_rejected");
        yield return Case("{\"nbf\":1700000001}", 0, false, TokenError.NotYetValid, "Nbf_is_checked_even_with_exp_checks_off");
        yield return Case("{\"exp\":2000000000,\"nbf\":\"soon\"}", 0, true, TokenError.TokenMalformed, "String_nbf_is_malformed");
    }

    // ---- the members the checks read, found in one pass ---------------------

    private static IEnumerable<TestCaseData> MemberCases()
    {
        TestCaseData Case(string header, string payload, TokenError error, string name) =>
            new TestCaseData(header, payload, error).SetName(name);

        yield return Case("{\"alg\":\"\\u0048S256\"}", Claims, TokenError.None, "Escaped_alg_value_is_read_unescaped");
        yield return Case("{\"\\u0061lg\":\"HS256\"}", Claims, TokenError.None, "Escaped_alg_name_is_read_unescaped");
        yield return Case("{\"alg\":\"\\u006eone\"}", Claims, TokenError.AlgNone, "Escaped_none_is_still_none");
        yield return Case("{\"alg\":\"HS256\",\"x\":{\"crit\":[\"b64\"]}}", Claims, TokenError.None, "Nested_crit_is_not_the_header_crit");
        yield return Case("{\"alg\":\"HS256\",\"c\\u0072it\":[\"b64\"]}", Claims, TokenError.CritUnsupported, "Escaped_crit_name_is_crit");
        yield return Case(Hs256, "{\"x\":{\"exp\":2000000000}}", TokenError.ExpMissing, "Nested_exp_is_not_the_exp_claim");
        yield return Case(Hs256, "{\"a\":[{\"exp\":1}],\"exp\":2000000000}", TokenError.None, "Exp_inside_an_array_is_not_the_exp_claim");
        yield return Case(Hs256, "{\"x\":{\"nbf\":\"soon\"},\"exp\":2000000000}", TokenError.None, "Nested_nbf_is_not_the_nbf_claim");
        yield return Case(Hs256, "{\"e\\u0078p\":1}", TokenError.Expired, "Escaped_exp_name_is_exp");
        yield return Case(Hs256, "{\"exp\":{\"at\":2000000000}}", TokenError.ExpMissing, "Object_exp_is_missing");
        yield return Case(Hs256, "{\"exp\":12345678901234567890}", TokenError.TimeInvalid, "Exp_longer_than_a_long_is_invalid");
        yield return Case(Hs256, "{\"exp\":2000000000000000000.000000000000000000001}", TokenError.None, "Long_fraction_is_read");
        yield return Case(Hs256, "{\"exp\":-5}", TokenError.Expired, "Negative_exp_is_expired");
        yield return Case(Hs256, "{\"exp\":0}", TokenError.Expired, "Zero_exp_is_expired");
        yield return Case(Hs256, "{\"exp\":1700000000000}", TokenError.None, "Exp_in_milliseconds_is_far_away");
    }

    [TestCaseSource(nameof(MemberCases))]
    public void Members_are_read_from_the_top_level_only_and_after_unescaping(string header, string payload,
        TokenError error)
    {
        Assert.That(T.VerifyError(T.Policy(_keys), Sign(header, payload)), Is.EqualTo(error));
    }

    [Test]
    public void Escaped_kid_selects_its_key()
    {
        using KeySet keys = T.Keys(T.Jwks(T.OctJwk(SecretA, "a"), T.OctJwk(SecretB, "b")));
        string token = T.Token("{\"alg\":\"HS256\",\"kid\":\"\\u0062\"}", Claims, T.Hmac(JwsAlgorithm.HS256, SecretB));
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.None));
    }

    [Test]
    public void CheckDecoded_rejects_a_repeated_member()
    {
        VerifyResult result = JwtVerifier.CheckDecoded(T.Policy(_keys), T.U(Hs256),
            T.U("{\"exp\":2000000000,\"exp\":1}"), 1_000_000_000L, new NoRuleValues());
        Assert.That(result.Error, Is.EqualTo(TokenError.TokenMalformed));
    }

    [Test]
    public void Claim_and_header_rules_read_the_parsed_parts()
    {
        VerificationPolicy policy = T.Policy(_keys);
        policy.AddRule(RuleTarget.Claim, T.U("sub"), RuleOperator.Eq, RuleValueKind.String, T.U("alice"));
        policy.AddRule(RuleTarget.Header, T.U("typ"), RuleOperator.Eq, RuleValueKind.String, T.U("JWT"));
        Assert.That(T.VerifyError(policy, Sign("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", Claims)),
            Is.EqualTo(TokenError.None));
        VerifyResult header = T.Verify(policy, Sign("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", Claims));
        Assert.That((header.Error, header.Detail), Is.EqualTo((TokenError.HeaderFailed, 1)));
        VerifyResult claim = T.Verify(policy, Sign("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}",
            "{\"sub\":\"bob\",\"exp\":2000000000}"));
        Assert.That((claim.Error, claim.Detail), Is.EqualTo((TokenError.ClaimFailed, 0)));
    }

    [TestCaseSource(nameof(TimeCases))]
    public void Time_claims_are_checked(string payload, long leeway, bool validateExp, TokenError error)
    {
        VerificationPolicy policy = T.Policy(_keys, exp: validateExp, leeway: leeway);
        Assert.That(T.VerifyError(policy, Sign(Hs256, payload)), Is.EqualTo(error));
    }

    [Test]
    public void Passing_exp_rule_does_not_disable_the_expiry_check()
    {
        VerificationPolicy policy = T.Policy(_keys);
        policy.AddRule(RuleTarget.Claim, T.U("exp"), RuleOperator.Gt, RuleValueKind.Json, T.U("0"));
        Assert.That(T.VerifyError(policy, Sign(Hs256, "{\"exp\":1000}")), Is.EqualTo(TokenError.Expired));
    }

    // ---- key selection -----------------------------------------------------

    private static readonly byte[] SecretA = T.U("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    private static readonly byte[] SecretB = T.U("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
    private static readonly byte[] SecretN = T.U("nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");

    private static IEnumerable<TestCaseData> KidCases()
    {
        TestCaseData Case(string? kid, byte[] secret, bool withKidless, TokenError error, string name) =>
            new TestCaseData(kid, secret, withKidless, error).SetName(name);

        yield return Case("b", SecretB, true, TokenError.None, "Key_with_the_token_kid_verifies");
        yield return Case("c", SecretN, true, TokenError.None, "Unknown_kid_falls_back_to_keys_without_a_kid");
        yield return Case("c", SecretN, false, TokenError.KeyNotFound, "Unknown_kid_without_kidless_keys_finds_no_key");
        yield return Case("a", SecretB, true, TokenError.BadSignature, "Kid_of_another_key_is_a_bad_signature");
        yield return Case("a", SecretN, true, TokenError.None, "Kid_known_but_signed_by_a_kidless_key_verifies");
        yield return Case(null, SecretB, false, TokenError.None, "Token_without_kid_tries_every_key");
        yield return Case(null, T.U("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"), true, TokenError.BadSignature, "Token_without_kid_and_no_matching_key_is_a_bad_signature");
    }

    [TestCaseSource(nameof(KidCases))]
    public void Keys_are_selected_by_kid(string? kid, byte[] secret, bool withKidless, TokenError error)
    {
        var jwks = new List<string> { T.OctJwk(SecretA, "a"), T.OctJwk(SecretB, "b") };
        if (withKidless)
        {
            jwks.Add(T.OctJwk(SecretN));
        }
        using KeySet keys = T.Keys(T.Jwks(jwks.ToArray()));
        string header = kid is null ? Hs256 : "{\"alg\":\"HS256\",\"kid\":\"" + kid + "\"}";
        string token = T.Token(header, Claims, T.Hmac(JwsAlgorithm.HS256, secret));
        Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(error));
    }

    [Test]
    public void Kid_in_an_extra_key_set_is_found()
    {
        using KeySet a = T.Keys(T.Jwks(T.OctJwk(SecretA, "a")));
        using KeySet b = T.Keys(T.Jwks(T.OctJwk(SecretB, "b")));
        string token = T.Token("{\"alg\":\"HS256\",\"kid\":\"b\"}", Claims, T.Hmac(JwsAlgorithm.HS256, SecretB));
        Assert.That(T.Verify(T.Policy(a), token, extra: [b]).Error, Is.EqualTo(TokenError.None));
    }

    // ---- revocation --------------------------------------------------------

    [TestCase("{\"sub\":\"alice\",\"exp\":2000000000}", TokenError.SubRevoked, TestName = "Revoked_sub_is_rejected")]
    [TestCase("{\"sub\":\"bob\",\"exp\":2000000000}", TokenError.None, TestName = "Sub_not_in_the_list_is_accepted")]
    [TestCase("{\"sub\":\"carol\",\"exp\":2000000000}", TokenError.SubRevoked, TestName = "Sub_from_a_second_list_is_rejected")]
    [TestCase("{\"sub\":\"\\u0061lice\",\"exp\":2000000000}", TokenError.SubRevoked, TestName = "Escaped_revoked_sub_is_rejected")]
    [TestCase("{\"exp\":2000000000}", TokenError.SubRevoked, TestName = "Token_without_sub_is_rejected_when_a_sub_list_is_set")]
    [TestCase("{\"sub\":42,\"exp\":2000000000}", TokenError.SubRevoked, TestName = "Numeric_sub_is_rejected_when_a_sub_list_is_set")]
    public void Sub_revocation(string payload, TokenError error)
    {
        VerificationPolicy policy = T.Policy(_keys);
        Assert.That(policy.AddRevocation(RevocationKind.Sub, T.U("{\"alice\":{\"at\":\"2023\"}}")), Is.EqualTo(ConfigError.None));
        Assert.That(policy.AddRevocation(RevocationKind.Sub, T.U("{\"carol\":1}")), Is.EqualTo(ConfigError.None));
        Assert.That(T.VerifyError(policy, Sign(Hs256, payload)), Is.EqualTo(error));
    }

    [TestCase("{\"alg\":\"HS256\",\"kid\":\"old\"}", TokenError.KidRevoked, TestName = "Revoked_kid_is_rejected")]
    [TestCase("{\"alg\":\"HS256\",\"kid\":\"new\"}", TokenError.None, TestName = "Kid_not_in_the_list_is_accepted")]
    [TestCase("{\"alg\":\"HS256\"}", TokenError.KidRevoked, TestName = "Token_without_kid_is_rejected_when_a_kid_list_is_set")]
    [TestCase("{\"alg\":\"HS256\",\"kid\":\"\"}", TokenError.KidRevoked, TestName = "Empty_kid_is_rejected_when_a_kid_list_is_set")]
    public void Kid_revocation(string header, TokenError error)
    {
        VerificationPolicy policy = T.Policy(_keys);
        Assert.That(policy.AddRevocation(RevocationKind.Kid, T.U("{\"old\":{\"reason\":\"rotated\"}}")), Is.EqualTo(ConfigError.None));
        Assert.That(T.VerifyError(policy, Sign(header, Claims)), Is.EqualTo(error));
    }

    [TestCase("{", ConfigError.JsonInvalid, TestName = "Revocation_list_that_is_not_JSON_is_invalid")]
    [TestCase("[\"alice\"]", ConfigError.JsonNotObject, TestName = "Revocation_list_that_is_an_array_is_refused")]
    [TestCase("{}", ConfigError.None, TestName = "Empty_revocation_list_loads")]
    [TestCase("{\"a\":1,\"a\":2}", ConfigError.None, TestName = "Repeated_name_in_a_revocation_list_is_harmless")]
    public void Revocation_list_documents(string json, ConfigError error)
    {
        Assert.That(T.Policy(_keys).AddRevocation(RevocationKind.Sub, T.U(json)), Is.EqualTo(error));
    }

    [Test]
    public void Signature_layer_rejects_none_and_crit()
    {
        string none = T.B64("{\"alg\":\"none\"}") + "." + T.B64("x") + ".";
        string crit = Sign("{\"alg\":\"HS256\",\"crit\":[\"b64\"]}", "x");
        Assert.That(JwtVerifier.VerifySignature(T.U(none), [_keys]), Is.EqualTo(TokenError.AlgNone));
        Assert.That(JwtVerifier.VerifySignature(T.U(crit), [_keys]), Is.EqualTo(TokenError.CritUnsupported));
    }
}
