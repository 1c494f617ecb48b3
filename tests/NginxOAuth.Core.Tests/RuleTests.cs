using System.Collections.Generic;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>Claim and header rules: operators, value kinds, paths, order.</summary>
public sealed class RuleTests
{
    private const string Payload =
        "{\"exp\":2000000000,\"nbf\":1699999000,\"s\":\"abc\",\"u\":\"caf\\u00e9\",\"i\":1,\"r\":1.0,\"big\":12345678901234567890123,"
        + "\"arr\":[\"a\",\"b\",1],\"nested\":[[1,2],[3]],\"obj\":{\"k\":\"v\",\"n\":1},\"nul\":null,\"t\":true,"
        + "\"grants\":{\"access\":\"allow\",\"deep\":{\"x\":[10,20]}},\"grants.key\":\"dot\",\"roles\":[\"dev\",\"ops\"]}";

    private KeySet _keys = null!;

    [SetUp]
    public void SetUp() => _keys = T.Keys(T.Jwks(T.OctJwk(T.HmacSecret)));

    [TearDown]
    public void TearDown() => _keys.Dispose();

    private string Token(string header = "{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}", string payload = Payload) =>
        T.Token(header, payload, T.Hmac(JwsAlgorithm.HS256, T.HmacSecret));

    private TokenError Check(string path, RuleOperator op, RuleValueKind kind, string value, RuleTarget target = RuleTarget.Claim,
        long leeway = 0)
    {
        VerificationPolicy policy = T.Policy(_keys, leeway: leeway);
        Assert.That(policy.AddRule(target, T.U(path), op, kind, T.U(value)), Is.EqualTo(ConfigError.None));
        return T.VerifyError(policy, Token());
    }

    private static IEnumerable<TestCaseData> Operators()
    {
        TestCaseData Case(string path, RuleOperator op, RuleValueKind kind, string value, bool pass, string name) =>
            new TestCaseData(path, op, kind, value, pass).SetName(name);

        const RuleValueKind S = RuleValueKind.String;
        const RuleValueKind J = RuleValueKind.Json;

        yield return Case("s", RuleOperator.Eq, S, "abc", true, "Eq_plain_string_matches");
        yield return Case("s", RuleOperator.Eq, S, "ABC", false, "Eq_strings_are_case_sensitive");
        yield return Case("u", RuleOperator.Eq, S, "café", true, "Eq_compares_unescaped_bytes");
        yield return Case("u", RuleOperator.Eq, J, "\"caf\\u00e9\"", true, "Eq_escaped_expected_matches_unescaped_claim");
        yield return Case("i", RuleOperator.Eq, S, "1", false, "Eq_plain_value_is_a_string_not_a_number");
        yield return Case("i", RuleOperator.Eq, J, "1", true, "Eq_integer_matches_integer");
        yield return Case("i", RuleOperator.Eq, J, "1.0", false, "Eq_integer_never_equals_real");
        yield return Case("r", RuleOperator.Eq, J, "1", false, "Eq_real_never_equals_integer");
        yield return Case("r", RuleOperator.Eq, J, "1.00", true, "Eq_reals_compare_by_value");
        yield return Case("big", RuleOperator.Eq, J, "12345678901234567890123", true, "Eq_big_integers_compare_exactly");
        yield return Case("big", RuleOperator.Eq, J, "12345678901234567890124", false, "Eq_big_integers_differ");
        yield return Case("arr", RuleOperator.Eq, J, "[\"a\",\"b\",1]", true, "Eq_arrays_match_in_order");
        yield return Case("arr", RuleOperator.Eq, J, "[\"b\",\"a\",1]", false, "Eq_arrays_are_ordered");
        yield return Case("obj", RuleOperator.Eq, J, "{\"n\":1,\"k\":\"v\"}", true, "Eq_objects_ignore_member_order");
        yield return Case("obj", RuleOperator.Eq, J, "{\"k\":\"v\"}", false, "Eq_objects_need_the_same_keys");
        yield return Case("nul", RuleOperator.Eq, J, "null", true, "Eq_null_matches_null");
        yield return Case("t", RuleOperator.Eq, J, "true", true, "Eq_true_matches_true");
        yield return Case("t", RuleOperator.Eq, J, "false", false, "Eq_true_differs_from_false");
        yield return Case("s", RuleOperator.Ne, S, "xyz", true, "Ne_different_string_passes");
        yield return Case("s", RuleOperator.Ne, S, "abc", false, "Ne_same_string_fails");
        yield return Case("i", RuleOperator.Ne, J, "1.0", true, "Ne_integer_and_real_differ");
        yield return Case("i", RuleOperator.Gt, J, "0", true, "Gt_passes");
        yield return Case("i", RuleOperator.Gt, J, "1", false, "Gt_equal_fails");
        yield return Case("i", RuleOperator.Ge, J, "1", true, "Ge_equal_passes");
        yield return Case("r", RuleOperator.Ge, J, "1", true, "Ge_compares_real_with_integer_numerically");
        yield return Case("i", RuleOperator.Lt, J, "1.5", true, "Lt_passes");
        yield return Case("i", RuleOperator.Le, J, "0.5", false, "Le_fails");
        yield return Case("s", RuleOperator.Gt, J, "1", false, "Gt_on_a_string_claim_fails");
        yield return Case("roles", RuleOperator.Intersect, J, "[\"ops\",\"admin\"]", true, "Intersect_with_a_shared_element_passes");
        yield return Case("roles", RuleOperator.Intersect, J, "[\"admin\"]", false, "Intersect_without_a_shared_element_fails");
        yield return Case("s", RuleOperator.Intersect, J, "[\"abc\",\"x\"]", true, "Intersect_with_a_scalar_claim_passes");
        yield return Case("nested", RuleOperator.Intersect, J, "[[3]]", true, "Intersect_compares_elements_deeply");
        yield return Case("roles", RuleOperator.NIntersect, J, "[\"admin\"]", true, "Nintersect_without_a_shared_element_passes");
        yield return Case("roles", RuleOperator.NIntersect, J, "[\"dev\"]", false, "Nintersect_with_a_shared_element_fails");
        yield return Case("s", RuleOperator.In, J, "[\"x\",\"abc\"]", true, "In_array_passes");
        yield return Case("s", RuleOperator.In, J, "[\"x\"]", false, "In_array_fails");
        yield return Case("s", RuleOperator.In, J, "{\"abc\":{\"note\":1}}", true, "In_object_member_name_passes");
        yield return Case("u", RuleOperator.In, J, "{\"café\":1}", true, "In_object_compares_unescaped_names");
        yield return Case("i", RuleOperator.In, J, "{\"1\":true}", false, "In_object_needs_a_string_claim");
        yield return Case("roles", RuleOperator.In, J, "[[\"dev\",\"ops\"]]", true, "In_whole_array_claim_is_an_element");
        yield return Case("s", RuleOperator.NIn, J, "[\"x\"]", true, "Nin_passes");
        yield return Case("s", RuleOperator.NIn, J, "{\"abc\":1}", false, "Nin_object_member_fails");
    }

    [TestCaseSource(nameof(Operators))]
    public void Operator_decides(string path, RuleOperator op, RuleValueKind kind, string value, bool pass)
    {
        Assert.That(Check(path, op, kind, value), Is.EqualTo(pass ? TokenError.None : TokenError.ClaimFailed));
    }

    [TestCase(RuleOperator.Eq, "\"x\"", TestName = "Missing_claim_fails_eq")]
    [TestCase(RuleOperator.Ne, "\"x\"", TestName = "Missing_claim_fails_ne")]
    [TestCase(RuleOperator.Lt, "1", TestName = "Missing_claim_fails_lt")]
    [TestCase(RuleOperator.NIntersect, "[\"x\"]", TestName = "Missing_claim_fails_nintersect")]
    [TestCase(RuleOperator.NIn, "[\"x\"]", TestName = "Missing_claim_fails_nin")]
    [TestCase(RuleOperator.NIn, "{\"x\":1}", TestName = "Missing_claim_fails_nin_object")]
    public void Missing_claim_fails_every_operator(RuleOperator op, string value)
    {
        Assert.That(Check("absent", op, RuleValueKind.Json, value), Is.EqualTo(TokenError.ClaimFailed));
    }

    [TestCase(RuleOperator.NIntersect, "\"x\"", TestName = "Variable_nintersect_with_a_non_array_fails")]
    [TestCase(RuleOperator.NIn, "7", TestName = "Variable_nin_with_a_number_fails")]
    [TestCase(RuleOperator.Ne, "", TestName = "Empty_variable_fails_even_ne")]
    public void Wrongly_typed_variable_value_is_never_negated_into_a_pass(RuleOperator op, string value)
    {
        VerificationPolicy policy = T.Policy(_keys);
        policy.AddRule(RuleTarget.Claim, T.U("s"), op, RuleValueKind.Variable, default);
        Assert.That(T.Verify(policy, Token(), values: [T.U(value)]).Error, Is.EqualTo(TokenError.ClaimFailed));
    }

    [Test]
    public void Variable_value_is_parsed_per_request()
    {
        VerificationPolicy policy = T.Policy(_keys);
        policy.AddRule(RuleTarget.Claim, T.U("roles"), RuleOperator.Intersect, RuleValueKind.Variable, default);
        Assert.That(T.Verify(policy, Token(), values: [T.U("[\"ops\"]")]).Error, Is.EqualTo(TokenError.None));
        Assert.That(T.Verify(policy, Token(), values: [T.U("[\"x\"]")]).Error, Is.EqualTo(TokenError.ClaimFailed));
        Assert.That(T.Verify(policy, Token(), values: [null]).Error, Is.EqualTo(TokenError.ClaimFailed));
        Assert.That(T.Verify(policy, Token()).Error, Is.EqualTo(TokenError.ClaimFailed));
    }

    [Test]
    public void Variable_value_that_is_not_JSON_reports_the_rule_index()
    {
        VerificationPolicy policy = T.Policy(_keys);
        policy.AddRule(RuleTarget.Claim, T.U("s"), RuleOperator.Eq, RuleValueKind.String, T.U("abc"));
        policy.AddRule(RuleTarget.Claim, T.U("s"), RuleOperator.Eq, RuleValueKind.Variable, default);
        var result = T.Verify(policy, Token(), values: [null, T.U("abc")]);
        Assert.That(result.Error, Is.EqualTo(TokenError.RuleValueInvalid));
        Assert.That(result.Detail, Is.EqualTo(1));
    }

    [Test]
    public void Claim_rules_run_before_header_rules_and_report_their_index()
    {
        VerificationPolicy policy = T.Policy(_keys);
        policy.AddRule(RuleTarget.Header, T.U("kid"), RuleOperator.Eq, RuleValueKind.String, T.U("other"));
        policy.AddRule(RuleTarget.Claim, T.U("s"), RuleOperator.Eq, RuleValueKind.String, T.U("abc"));
        policy.AddRule(RuleTarget.Claim, T.U("i"), RuleOperator.Eq, RuleValueKind.Json, T.U("2"));
        var result = T.Verify(policy, Token());
        Assert.That(result.Error, Is.EqualTo(TokenError.ClaimFailed));
        Assert.That(result.Detail, Is.EqualTo(2));
    }

    [TestCase("alg", "HS256", true, TestName = "Header_rule_on_alg_passes")]
    [TestCase("typ", "JWT", true, TestName = "Header_rule_on_typ_passes")]
    [TestCase("kid", "k2", false, TestName = "Header_rule_on_kid_fails")]
    [TestCase("cty", "x", false, TestName = "Header_rule_on_a_missing_member_fails")]
    public void Header_rules(string path, string value, bool pass)
    {
        VerificationPolicy policy = T.Policy(_keys);
        policy.AddRule(RuleTarget.Claim, T.U("s"), RuleOperator.Eq, RuleValueKind.String, T.U("abc"));
        policy.AddRule(RuleTarget.Header, T.U(path), RuleOperator.Eq, RuleValueKind.String, T.U(value));
        var result = T.Verify(policy, Token());
        Assert.That(result.Error, Is.EqualTo(pass ? TokenError.None : TokenError.HeaderFailed));
        Assert.That(result.Detail, Is.EqualTo(pass ? -1 : 1));
    }

    // ---- configuration errors ---------------------------------------------

    [TestCase("s", 11, RuleValueKind.String, "x", ConfigError.OperatorInvalid, TestName = "Operator_out_of_range_is_refused")]
    [TestCase("s", -1, RuleValueKind.String, "x", ConfigError.OperatorInvalid, TestName = "Negative_operator_is_refused")]
    [TestCase("roles", (int)RuleOperator.Intersect, RuleValueKind.String, "x", ConfigError.ValueTypeInvalid, TestName = "Intersect_with_a_string_is_refused")]
    [TestCase("roles", (int)RuleOperator.Intersect, RuleValueKind.Json, "{\"a\":1}", ConfigError.ValueTypeInvalid, TestName = "Intersect_with_an_object_is_refused")]
    [TestCase("s", (int)RuleOperator.In, RuleValueKind.Json, "\"abc\"", ConfigError.ValueTypeInvalid, TestName = "In_with_a_string_is_refused")]
    [TestCase("s", (int)RuleOperator.NIn, RuleValueKind.Json, "3", ConfigError.ValueTypeInvalid, TestName = "Nin_with_a_number_is_refused")]
    [TestCase("i", (int)RuleOperator.Gt, RuleValueKind.String, "3", ConfigError.ValueTypeInvalid, TestName = "Gt_with_a_plain_string_is_refused")]
    [TestCase("i", (int)RuleOperator.Le, RuleValueKind.Json, "[3]", ConfigError.ValueTypeInvalid, TestName = "Le_with_an_array_is_refused")]
    [TestCase("s", (int)RuleOperator.Eq, RuleValueKind.Json, "{", ConfigError.JsonInvalid, TestName = "Json_value_that_does_not_parse_is_invalid")]
    [TestCase("s", (int)RuleOperator.Eq, RuleValueKind.Json, "{\"a\":1,\"a\":2}", ConfigError.JsonInvalid, TestName = "Json_value_with_duplicate_members_is_invalid")]
    [TestCase("", (int)RuleOperator.Eq, RuleValueKind.String, "x", ConfigError.PathInvalid, TestName = "Empty_path_is_invalid")]
    [TestCase(".a..b", (int)RuleOperator.Eq, RuleValueKind.String, "x", ConfigError.PathInvalid, TestName = "JQ_path_with_an_empty_step_is_invalid")]
    [TestCase(".a[x]", (int)RuleOperator.Eq, RuleValueKind.String, "x", ConfigError.PathInvalid, TestName = "JQ_path_with_a_bad_index_is_invalid")]
    [TestCase(".\"open", (int)RuleOperator.Eq, RuleValueKind.String, "x", ConfigError.PathInvalid, TestName = "JQ_path_with_an_open_quote_is_invalid")]
    [TestCase(".", (int)RuleOperator.Eq, RuleValueKind.String, "x", ConfigError.PathInvalid, TestName = "JQ_identity_path_is_invalid")]
    public void Bad_rule_is_refused(string path, int op, RuleValueKind kind, string value, ConfigError error)
    {
        Assert.That(T.Policy(_keys).AddRule(RuleTarget.Claim, T.U(path), (RuleOperator)op, kind, T.U(value)), Is.EqualTo(error));
    }

    [Test]
    public void Plain_string_with_invalid_UTF8_is_refused()
    {
        Assert.That(T.Policy(_keys).AddRule(RuleTarget.Claim, T.U("s"), RuleOperator.Eq, RuleValueKind.String, [0xff]),
            Is.EqualTo(ConfigError.ValueTypeInvalid));
    }

    // ---- paths --------------------------------------------------------------

    private static IEnumerable<TestCaseData> Paths()
    {
        TestCaseData Case(string? delimiter, string? quote, string path, string expected, bool pass, string name) =>
            new TestCaseData(delimiter, quote, path, expected, pass).SetName(name);

        yield return Case(null, null, "grants.key", "dot", true, "Without_nesting_a_dotted_path_is_a_literal_name");
        yield return Case(null, null, "grants.access", "allow", false, "Without_nesting_a_dotted_path_does_not_descend");
        yield return Case(null, null, ".grants.access", "allow", true, "JQ_path_works_without_nesting");
        yield return Case("", "", "grants.access", "allow", true, "Default_delimiter_descends");
        yield return Case("", "", "\"grants.key\"", "dot", true, "Quoted_segment_is_a_literal_name");
        yield return Case("", "", "grants.key", "dot", false, "Unquoted_dotted_name_descends_instead");
        yield return Case("/", "'", "grants/access", "allow", true, "Custom_delimiter_descends");
        yield return Case("/", "'", "'grants.key'", "dot", true, "Custom_quote_is_literal");
        yield return Case("::", "", "grants::deep::x", "[10,20]", true, "Multi_byte_delimiter_descends");
        yield return Case(null, null, ".\"grants.key\"", "dot", true, "JQ_quoted_name_is_literal");
        yield return Case(null, null, ".grants.deep.x[1]", "20", true, "JQ_index_selects_an_element");
        yield return Case(null, null, ".nested[0][1]", "2", true, "JQ_double_index_selects_an_element");
        yield return Case(null, null, ".nested[5]", "2", false, "JQ_index_out_of_range_is_missing");
        yield return Case(null, null, ".[\"grants.key\"]", "dot", true, "JQ_bracket_name_is_literal");
        yield return Case(null, null, "[0]", "1", false, "JQ_index_on_an_object_root_is_missing");
        yield return Case(null, null, "grants\0access", "allow", true, "NUL_separated_names_descend");
        yield return Case(null, null, "grants\0deep\0x", "[10,20]", true, "NUL_separated_names_descend_deeply");
    }

    [TestCaseSource(nameof(Paths))]
    public void Rule_paths_resolve(string? delimiter, string? quote, string path, string expected, bool pass)
    {
        VerificationPolicy policy = T.Policy(_keys);
        if (delimiter is not null)
        {
            policy.SetNested(T.U(delimiter), T.U(quote!));
        }
        bool json = expected.StartsWith('[') || char.IsDigit(expected[0]);
        Assert.That(policy.AddRule(RuleTarget.Claim, T.U(path), RuleOperator.Eq,
            json ? RuleValueKind.Json : RuleValueKind.String, T.U(expected)), Is.EqualTo(ConfigError.None));
        Assert.That(T.VerifyError(policy, Token()), Is.EqualTo(pass ? TokenError.None : TokenError.ClaimFailed));
    }

    // ---- leeway on exp / nbf rules ------------------------------------------

    [TestCase("exp", RuleOperator.Gt, "2000000005", 10, true, TestName = "Exp_rule_gets_the_leeway_subtracted")]
    [TestCase("exp", RuleOperator.Gt, "2000000005", 0, false, TestName = "Exp_rule_without_leeway_is_exact")]
    [TestCase("nbf", RuleOperator.Le, "1699998995", 10, true, TestName = "Nbf_rule_gets_the_leeway_added")]
    [TestCase("nbf", RuleOperator.Le, "1699998995", 0, false, TestName = "Nbf_rule_without_leeway_is_exact")]
    [TestCase("i", RuleOperator.Gt, "5", 10, false, TestName = "Leeway_applies_only_to_exp_and_nbf")]
    public void Leeway_widens_time_rules(string claim, RuleOperator op, string value, long leeway, bool pass)
    {
        Assert.That(Check(claim, op, RuleValueKind.Json, value, leeway: leeway),
            Is.EqualTo(pass ? TokenError.None : TokenError.ClaimFailed));
    }
}
