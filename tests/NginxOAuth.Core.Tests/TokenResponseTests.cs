using System;
using System.Text;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.OAuth2;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>nox_introspect_parse / nox_exchange_parse / nox_sha256 (RFC 7662, RFC 8693).</summary>
public sealed class TokenResponseTests
{
    private const long Now = 1_900_000_000;

    [TestCase("{\"active\":true}", ResponseError.None, 0L, TestName = "Active_true_is_ok")]
    [TestCase("{\"active\":true,\"exp\":1900000600}", ResponseError.None, 600L, TestName = "Seconds_until_exp_are_reported")]
    [TestCase("{\"active\":true,\"exp\":1900000600.9}", ResponseError.None, 600L, TestName = "Fractional_exp_is_rounded_down")]
    [TestCase("{\"active\":true,\"exp\":19000006009e-1}", ResponseError.None, 600L, TestName = "Exponent_form_exp_is_read_whole")]
    [TestCase("{\"active\":true,\"exp\":1.9000006E9}", ResponseError.None, 600L, TestName = "Exponent_form_exp_with_fraction_digits")]
    [TestCase("{\"active\":true,\"exp\":1900000000.5}", ResponseError.Expired, 0L, TestName = "Exp_within_the_current_second_has_passed")]
    [TestCase("{\"active\":true,\"exp\":1900000000}", ResponseError.Expired, 0L, TestName = "Exp_equal_to_now_has_passed")]
    [TestCase("{\"active\":true,\"exp\":1899999900}", ResponseError.Expired, 0L, TestName = "Past_exp_is_expired")]
    [TestCase("{\"active\":true,\"exp\":-5}", ResponseError.Expired, 0L, TestName = "Negative_exp_is_expired")]
    [TestCase("{\"active\":true,\"exp\":0}", ResponseError.Expired, 0L, TestName = "Zero_exp_is_expired")]
    [TestCase("{\"active\":true,\"exp\":9223372036854775807}", ResponseError.None, 9223372036854775807L - Now, TestName = "Largest_exp_is_read")]
    [TestCase("{\"active\":true,\"exp\":1e999}", ResponseError.TimeInvalid, 0L, TestName = "Exp_beyond_64_bits_is_invalid")]
    [TestCase("{\"active\":true,\"exp\":-1e999}", ResponseError.TimeInvalid, 0L, TestName = "Exp_below_64_bits_is_invalid")]
    [TestCase("{\"active\":true,\"exp\":9223372036854775808}", ResponseError.TimeInvalid, 0L, TestName = "Exp_of_2_to_the_63_is_invalid")]
    [TestCase("{\"active\":true,\"exp\":\"2000000000\"}", ResponseError.TimeInvalid, 0L, TestName = "String_exp_is_invalid")]
    [TestCase("{\"active\":true,\"exp\":[2000000000]}", ResponseError.TimeInvalid, 0L, TestName = "Array_exp_is_invalid")]
    [TestCase("{\"active\":true,\"exp\":null}", ResponseError.None, 0L, TestName = "Null_exp_means_no_exp")]
    [TestCase("{\"active\":false}", ResponseError.Inactive, 0L, TestName = "Active_false_is_inactive")]
    [TestCase("{\"active\":false,\"exp\":1e999}", ResponseError.Inactive, 0L, TestName = "Inactive_is_inactive_whatever_its_exp")]
    [TestCase("{\"sub\":\"alice\"}", ResponseError.ActiveInvalid, 0L, TestName = "Missing_active_is_invalid")]
    [TestCase("{\"active\":\"true\"}", ResponseError.ActiveInvalid, 0L, TestName = "String_active_is_invalid")]
    [TestCase("{\"active\":1}", ResponseError.ActiveInvalid, 0L, TestName = "Numeric_active_is_invalid")]
    [TestCase("{\"active\":null}", ResponseError.ActiveInvalid, 0L, TestName = "Null_active_is_invalid")]
    [TestCase("{\"active\":true", ResponseError.JsonInvalid, 0L, TestName = "Truncated_response_is_malformed")]
    [TestCase("", ResponseError.JsonInvalid, 0L, TestName = "Empty_response_is_malformed")]
    [TestCase("<html>502</html>", ResponseError.JsonInvalid, 0L, TestName = "Html_response_is_malformed")]
    [TestCase("{\"active\":true,\"active\":false}", ResponseError.JsonInvalid, 0L, TestName = "Duplicate_active_is_malformed")]
    [TestCase("[{\"active\":true}]", ResponseError.JsonNotObject, 0L, TestName = "Array_response_is_not_an_object")]
    [TestCase("true", ResponseError.JsonNotObject, 0L, TestName = "Scalar_response_is_not_an_object")]
    // the single pass (JsonGuard with wanted names): what a parsed document read the same way
    [TestCase("{\"\\u0061ctive\":true,\"\\u0065xp\":1900000600}", ResponseError.None, 600L, TestName = "Escaped_member_names_are_read")]
    [TestCase("{\"\\u0061ctive\":false}", ResponseError.Inactive, 0L, TestName = "Escaped_active_false_is_inactive")]
    [TestCase("{\"active\":true,\"\\u0061ctive\":true}", ResponseError.JsonInvalid, 0L, TestName = "Duplicate_active_spelt_with_an_escape_is_malformed")]
    [TestCase("{\"act\\u0069ve \":true}", ResponseError.ActiveInvalid, 0L, TestName = "A_longer_name_is_not_active")]
    [TestCase("{\"ext\":{\"active\":true,\"exp\":1},\"active\":true}", ResponseError.None, 0L, TestName = "Nested_active_and_exp_are_skipped")]
    [TestCase("{\"ext\":{\"active\":true},\"sub\":\"a\"}", ResponseError.ActiveInvalid, 0L, TestName = "Nested_active_alone_is_not_active")]
    [TestCase("{\"ext\":[{\"active\":false,\"exp\":0}],\"active\":true,\"exp\":1900000600}", ResponseError.None, 600L, TestName = "Active_and_exp_inside_an_array_are_skipped")]
    [TestCase("{\"active\":true,\"exp\":{\"exp\":1900000600}}", ResponseError.TimeInvalid, 0L, TestName = "Object_exp_is_invalid")]
    [TestCase("{\"exp\":1900000600,\"sub\":\"a\",\"active\":true}", ResponseError.None, 600L, TestName = "Exp_before_active_is_read")]
    [TestCase("{\"active\":true,\"exp\":123456789012345678901234567890}", ResponseError.TimeInvalid, 0L, TestName = "Thirty_digit_exp_is_invalid")]
    [TestCase("{\"active\":true,\"exp\":1900000600.000000000000000000000000001}", ResponseError.None, 600L, TestName = "Exp_with_a_long_fraction_is_rounded_down")]
    [TestCase("{\"active\":true,\"exp\":1900000600,\"n\":1e99999}", ResponseError.None, 600L, TestName = "A_huge_number_in_another_member_is_accepted")]
    [TestCase("{\"active\":true,\"exp\":19", ResponseError.JsonInvalid, 0L, TestName = "Response_truncated_in_exp_is_malformed")]
    [TestCase("{\"active\":tr", ResponseError.JsonInvalid, 0L, TestName = "Response_truncated_in_active_is_malformed")]
    [TestCase("{\"active\":true,\"ext\":{\"a\":1}", ResponseError.JsonInvalid, 0L, TestName = "Response_truncated_after_a_nested_object_is_malformed")]
    [TestCase("{\"active\":true} {", ResponseError.JsonInvalid, 0L, TestName = "Trailing_data_is_malformed")]
    [TestCase("{\"active\":true,}", ResponseError.JsonInvalid, 0L, TestName = "Trailing_comma_is_malformed")]
    [TestCase("{\"active\":true /* c */}", ResponseError.JsonInvalid, 0L, TestName = "Comment_is_malformed")]
    [TestCase("{\"active\":true,\"sub\":\"\\ud800\"}", ResponseError.JsonInvalid, 0L, TestName = "Lone_surrogate_escape_is_malformed")]
    [TestCase("{\"active\":true,\"ext\":{\"k\":1,\"k\":2}}", ResponseError.JsonInvalid, 0L, TestName = "Duplicate_name_in_a_nested_object_is_malformed")]
    public void Introspection_response_is_classified(string json, ResponseError expected, long expiresIn)
    {
        IntrospectionResult result = TokenResponses.ParseIntrospection(T.U(json), Now);
        Assert.That(result.Error, Is.EqualTo(expected));
        Assert.That(result.ExpiresIn, Is.EqualTo(expiresIn));
    }

    [TestCase("{\"access_token\":\"new\",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:jwt\","
        + "\"token_type\":\"N_A\"}", "N_A", "urn:ietf:params:oauth:token-type:jwt",
        TestName = "Exchange_writes_token_type_then_issued_token_type")]
    [TestCase("{\"access_token\":\"new\",\"issued_token_type\":\"urn:x\"}", null, "urn:x",
        TestName = "Exchange_issued_token_type_follows_the_token_when_token_type_is_absent")]
    public void Exchange_types_are_read_each_on_its_own(string json, string? type, string issued)
    {
        var output = new byte[json.Length];
        ExchangeResult result = TokenResponses.ParseExchange(T.U(json), output);
        Assert.That(result.Error, Is.EqualTo(ResponseError.None));
        int at = result.TokenLength;
        Assert.That(result.TypeLength, Is.EqualTo(type is null ? -1 : type.Length));
        if (type is not null)
        {
            Assert.That(Encoding.UTF8.GetString(output, at, result.TypeLength), Is.EqualTo(type));
            at += result.TypeLength;
        }
        Assert.That(Encoding.UTF8.GetString(output, at, result.IssuedTypeLength), Is.EqualTo(issued));
    }

    private static readonly byte[][] NotUtf8 =
    [
        [.. "{\"active\":true,\"sub\":\"a"u8, 0xff, .. "\"}"u8],
        [.. "{\"active\":true,\"sub\":\"a"u8, 0xc3, 0x28, .. "\"}"u8],
        [.. "{\"active\":true,\"sub\":\"a"u8, 0xed, 0xa0, 0x80, .. "\"}"u8], // a UTF-16 surrogate
        [.. "{\"active\":true,\"sub\":\"a"u8, 0xc0, 0xaf, .. "\"}"u8], // overlong "/"
        [.. "{\"active\":true,\"s"u8, 0xe2, 0x82, .. "\":1}"u8], // cut in a member name
    ];

    [TestCaseSource(nameof(NotUtf8))]
    public void Introspection_response_that_is_not_UTF8_is_refused(byte[] json)
    {
        Assert.That(TokenResponses.ParseIntrospection(json, Now).Error, Is.EqualTo(ResponseError.Utf8Invalid));
    }

    [TestCaseSource(nameof(NotUtf8))]
    public void Exchange_response_that_is_not_UTF8_is_refused(byte[] json)
    {
        Assert.That(TokenResponses.ParseExchange(json, new byte[json.Length]).Error, Is.EqualTo(ResponseError.Utf8Invalid));
    }

    [Test]
    public void UTF8_member_values_are_accepted()
    {
        Assert.That(TokenResponses.ParseIntrospection(T.U("{\"active\":true,\"sub\":\"J\u00f6rg \u4e2d \ud83d\ude00\"}"), Now).Error,
            Is.EqualTo(ResponseError.None));
        Assert.That(TokenResponses.ParseIntrospection(T.U("{\"active\":true,\"sub\":\"Jörg 中 😀\"}"), Now).Error,
            Is.EqualTo(ResponseError.None));
    }

    [Test]
    public void Response_over_64_KiB_is_too_large()
    {
        string big = "{\"active\":true,\"pad\":\"" + new string('x', 64 * 1024) + "\"}";
        Assert.That(TokenResponses.ParseIntrospection(T.U(big), Now).Error, Is.EqualTo(ResponseError.TooLarge));
        Assert.That(TokenResponses.ParseExchange(T.U(big), new byte[big.Length]).Error,
            Is.EqualTo(ResponseError.TooLarge));
    }

    [Test]
    public void Response_of_exactly_64_KiB_is_read()
    {
        string head = "{\"active\":true,\"pad\":\"";
        string json = head + new string('x', 64 * 1024 - head.Length - 2) + "\"}";
        Assert.That(Encoding.UTF8.GetByteCount(json), Is.EqualTo(64 * 1024));
        Assert.That(TokenResponses.ParseIntrospection(T.U(json), Now).Error, Is.EqualTo(ResponseError.None));
    }

    [TestCase("sub", "alice", TestName = "Sub_is_read_for_its_variable")]
    [TestCase("scope", "read write", TestName = "Scope_is_read_for_its_variable")]
    [TestCase("client_id", "app-1", TestName = "Client_id_is_read_for_its_variable")]
    [TestCase("exp", "2000000000", TestName = "Exp_renders_as_integer_text")]
    [TestCase("aud", "api,web", TestName = "Array_claim_joins_with_commas")]
    public void Introspection_members_render_as_variables(string name, string expected)
    {
        const string json = "{\"active\":true,\"sub\":\"alice\",\"scope\":\"read write\",\"client_id\":\"app-1\","
            + "\"exp\":2000000000,\"aud\":[\"api\",\"web\"]}";
        var output = new byte[256];
        JsonReadResult result = JsonRender.Get(T.U(json),
            ClaimPath.Parse(T.U(name), PathKind.Name, default, default), output);
        Assert.That(result.Error, Is.EqualTo(JsonReadError.None));
        Assert.That(Encoding.UTF8.GetString(output, 0, result.Length), Is.EqualTo(expected));
    }

    [TestCase("{\"access_token\":\"new\",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:access_token\","
        + "\"token_type\":\"Bearer\",\"expires_in\":120}", "new", "Bearer", 120L,
        TestName = "Exchange_reads_token_token_type_and_expires_in")]
    [TestCase("{\"access_token\":\"new\",\"token_type\":\"Bearer\"}", "new", "Bearer", -1L,
        TestName = "Exchange_reads_token_type_without_issued_token_type")]
    [TestCase("{\"access_token\":\"new\",\"issued_token_type\":\"urn:x\"}", "new", null, -1L,
        TestName = "Exchange_with_only_issued_token_type_has_no_token_type")]
    [TestCase("{\"access_token\":\"new\"}", "new", null, -1L, TestName = "Exchange_without_a_type_reports_none")]
    [TestCase("{\"access_token\":\"a\\u002Fb\",\"expires_in\":\"60\"}", "a/b", null, 60L,
        TestName = "Exchange_token_is_unescaped_and_string_of_digits_expires_in_read")]
    [TestCase("{\"access_token\":\"t\",\"expires_in\":\"60s\"}", "t", null, -1L,
        TestName = "Other_string_expires_in_counts_as_missing")]
    [TestCase("{\"access_token\":\"t\",\"expires_in\":-1}", "t", null, 0L,
        TestName = "Negative_expires_in_leaves_no_lifetime")]
    [TestCase("{\"access_token\":\"t\",\"expires_in\":2.5}", "t", null, 2L,
        TestName = "Fractional_expires_in_is_rounded_down")]
    [TestCase("{\"access_token\":\"t\",\"expires_in\":25e-1}", "t", null, 2L,
        TestName = "Exponent_form_expires_in_is_read")]
    [TestCase("{\"access_token\":\"t\",\"expires_in\":0.9}", "t", null, 0L,
        TestName = "Expires_in_below_a_second_leaves_no_lifetime")]
    [TestCase("{\"access_token\":\"t\",\"expires_in\":1e999}", "t", null, -1L,
        TestName = "Expires_in_beyond_64_bits_sets_no_limit")]
    [TestCase("{\"access_token\":\"t\",\"expires_in\":-1e999}", "t", null, 0L,
        TestName = "Expires_in_below_64_bits_leaves_no_lifetime")]
    [TestCase("{\"access_token\":\"J\u00f6rg\\tT\"}", "J\u00f6rg\tT", null, -1L,
        TestName = "Issued_token_may_hold_tab_and_UTF8")]
    public void Exchange_response_is_read(string json, string token, string? type, long expiresIn)
    {
        var output = new byte[json.Length];
        ExchangeResult result = TokenResponses.ParseExchange(T.U(json), output);
        Assert.That(result.Error, Is.EqualTo(ResponseError.None));
        Assert.That(Encoding.UTF8.GetString(output, 0, result.TokenLength), Is.EqualTo(token));
        Assert.That(result.TypeLength, Is.EqualTo(type is null ? -1 : Encoding.UTF8.GetByteCount(type)));
        if (type is not null)
        {
            Assert.That(Encoding.UTF8.GetString(output, result.TokenLength, result.TypeLength), Is.EqualTo(type));
        }
        Assert.That(result.ExpiresIn, Is.EqualTo(expiresIn));
    }

    [TestCase("{\"access_token\":\"NEW\\r\\nX-Injected: yes\"}", ResponseError.TokenChars, TestName = "Issued_token_with_CRLF_fails")]
    [TestCase("{\"access_token\":\"NEW\\n\"}", ResponseError.TokenChars, TestName = "Issued_token_with_LF_fails")]
    [TestCase("{\"access_token\":\"NEW\\u0000\"}", ResponseError.TokenChars, TestName = "Issued_token_with_NUL_fails")]
    [TestCase("{\"access_token\":\"NEW\\u001b\"}", ResponseError.TokenChars, TestName = "Issued_token_with_ESC_fails")]
    [TestCase("{\"access_token\":\"NEW\\u007f\"}", ResponseError.TokenChars, TestName = "Issued_token_with_DEL_fails")]
    [TestCase("{\"access_token\":\"NEW\\ud800\"}", ResponseError.JsonInvalid, TestName = "Issued_token_with_a_lone_surrogate_escape_fails")]
    [TestCase("{\"token_type\":\"Bearer\"}", ResponseError.AccessTokenMissing, TestName = "Exchange_without_access_token_fails")]
    [TestCase("{\"access_token\":\"\"}", ResponseError.AccessTokenMissing, TestName = "Exchange_with_empty_access_token_fails")]
    [TestCase("{\"access_token\":42}", ResponseError.AccessTokenMissing, TestName = "Exchange_with_numeric_access_token_fails")]
    [TestCase("{\"error\":\"invalid_grant\"}", ResponseError.AccessTokenMissing, TestName = "Exchange_error_body_fails")]
    [TestCase("{\"access_token\":", ResponseError.JsonInvalid, TestName = "Exchange_malformed_response_fails")]
    [TestCase("[]", ResponseError.JsonNotObject, TestName = "Exchange_array_response_fails")]
    public void Exchange_response_is_refused(string json, ResponseError expected)
    {
        Assert.That(TokenResponses.ParseExchange(T.U(json), new byte[64]).Error, Is.EqualTo(expected));
    }

    [Test]
    public void Exchange_into_a_small_buffer_reports_the_size_needed()
    {
        ExchangeResult result = TokenResponses.ParseExchange(T.U("{\"access_token\":\"abcdef\"}"), new byte[3]);
        Assert.That(result.Error, Is.EqualTo(ResponseError.BufferTooSmall));
        Assert.That(result.TokenLength, Is.EqualTo(6));
    }

    [Test]
    public void Sha256_matches_the_FIPS_180_vector()
    {
        var output = new byte[32];
        Assert.That(TokenResponses.Sha256(T.U("abc"), output), Is.True);
        Assert.That(Convert.ToHexStringLower(output),
            Is.EqualTo("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        Assert.That(TokenResponses.Sha256(T.U("abc"), new byte[31]), Is.False);
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(55)]
    [TestCase(56)]
    [TestCase(64)]
    [TestCase(1000)]
    [TestCase(100_000)]
    public void Sha256_fast_path_is_taken_and_agrees_with_dotnet(int length)
    {
        var data = new byte[length];
        new Random(length).NextBytes(data);
        var output = new byte[32];

        // twice: the per-thread context is reused
        for (int round = 0; round < 2; round++)
        {
            Assert.That(NginxOAuth.Core.Interop.Sha256.TryHash(data, output), Is.True, "OpenSSL path");
            Assert.That(output, Is.EqualTo(System.Security.Cryptography.SHA256.HashData(data)));
        }
    }
}
