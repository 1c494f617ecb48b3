using System;
using System.Text;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.OAuth2;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>nox_introspect_parse / nox_exchange_parse / nox_sha256 (RFC 7662, RFC 8693).</summary>
public sealed class TokenResponseTests
{
    [TestCase("{\"active\":true}", ResponseError.None, 0L, TestName = "Active_true_is_ok")]
    [TestCase("{\"active\":true,\"exp\":2000000000}", ResponseError.None, 2000000000L, TestName = "Exp_is_extracted")]
    [TestCase("{\"active\":true,\"exp\":\"2000000000\"}", ResponseError.None, 0L, TestName = "String_exp_counts_as_missing")]
    [TestCase("{\"active\":true,\"exp\":1.5}", ResponseError.None, 0L, TestName = "Fractional_exp_counts_as_missing")]
    [TestCase("{\"active\":true,\"exp\":-5}", ResponseError.None, 0L, TestName = "Negative_exp_counts_as_missing")]
    [TestCase("{\"active\":false}", ResponseError.Inactive, 0L, TestName = "Active_false_is_inactive")]
    [TestCase("{\"active\":false,\"exp\":7}", ResponseError.Inactive, 7L, TestName = "Inactive_still_reports_exp")]
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
    public void Introspection_response_is_classified(string json, ResponseError expected, long exp)
    {
        IntrospectionResult result = TokenResponses.ParseIntrospection(T.U(json));
        Assert.That(result.Error, Is.EqualTo(expected));
        Assert.That(result.Exp, Is.EqualTo(exp));
    }

    [Test]
    public void Response_over_64_KiB_is_too_large()
    {
        string big = "{\"active\":true,\"pad\":\"" + new string('x', 64 * 1024) + "\"}";
        Assert.That(TokenResponses.ParseIntrospection(T.U(big)).Error, Is.EqualTo(ResponseError.TooLarge));
        Assert.That(TokenResponses.ParseExchange(T.U(big), new byte[big.Length]).Error,
            Is.EqualTo(ResponseError.TooLarge));
    }

    [Test]
    public void Response_of_exactly_64_KiB_is_read()
    {
        string head = "{\"active\":true,\"pad\":\"";
        string json = head + new string('x', 64 * 1024 - head.Length - 2) + "\"}";
        Assert.That(Encoding.UTF8.GetByteCount(json), Is.EqualTo(64 * 1024));
        Assert.That(TokenResponses.ParseIntrospection(T.U(json)).Error, Is.EqualTo(ResponseError.None));
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
        + "\"token_type\":\"Bearer\",\"expires_in\":120}", "new", "urn:ietf:params:oauth:token-type:access_token", 120L,
        TestName = "Exchange_reads_token_issued_type_and_expires_in")]
    [TestCase("{\"access_token\":\"new\",\"token_type\":\"Bearer\"}", "new", "Bearer", 0L,
        TestName = "Exchange_falls_back_to_token_type")]
    [TestCase("{\"access_token\":\"new\"}", "new", null, 0L, TestName = "Exchange_without_a_type_reports_none")]
    [TestCase("{\"access_token\":\"a\\u002Fb\",\"expires_in\":\"60\"}", "a/b", null, 0L,
        TestName = "Exchange_token_is_unescaped_and_string_expires_in_ignored")]
    [TestCase("{\"access_token\":\"t\",\"expires_in\":-1}", "t", null, 0L,
        TestName = "Negative_expires_in_counts_as_missing")]
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
