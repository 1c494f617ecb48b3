using System;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Jwt;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.OAuth2;
using NginxOAuth.Core.Policy;
using NginxOAuth.Core.Sts;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// What the fuzzers found, stated as outcomes. System.Text.Json's reader
/// accepts invalid UTF-8 inside strings and lone surrogate escapes
/// (<c>"\ud800"</c>), then throws when such a string is read: the core let
/// that exception out of the verifier, the key loader, the response readers
/// and the STS. JsonGuard now refuses both, so every consumer sees invalid JSON.
/// </summary>
public sealed class FuzzFindingTests
{
    [TestCase("{\"\\ud800\":1}", TestName = "Lone_high_surrogate_in_a_member_name_is_invalid_JSON")]
    [TestCase("{\"x\":\"\\ud800\"}", TestName = "Lone_high_surrogate_in_a_string_is_invalid_JSON")]
    [TestCase("[\"\\udc00\"]", TestName = "Lone_low_surrogate_is_invalid_JSON")]
    [TestCase("[\"\\udc00\\ud800\"]", TestName = "Surrogates_in_the_wrong_order_are_invalid_JSON")]
    [TestCase("[\"\\ud800\\u0041\"]", TestName = "High_surrogate_before_another_escape_is_invalid_JSON")]
    [TestCase("[\"\\ud800x\"]", TestName = "High_surrogate_before_a_character_is_invalid_JSON")]
    public void Lone_surrogates_are_refused(string json)
    {
        Assert.That(JsonGuard.Check(T.U(json)), Is.EqualTo(JsonShape.Invalid));
    }

    [TestCase("[\"\\ud83d\\ude00\"]", TestName = "Escaped_surrogate_pair_is_accepted")]
    [TestCase("{\"\\uD83D\\uDE00\":\"\\\\ud800\"}", TestName = "Upper_case_pair_and_an_escaped_backslash_are_accepted")]
    public void Paired_surrogates_are_accepted(string json)
    {
        Assert.That(JsonGuard.Check(T.U(json)), Is.Not.EqualTo(JsonShape.Invalid));
    }

    [Test]
    public void Invalid_UTF8_inside_a_member_name_is_invalid_JSON()
    {
        Assert.That(JsonGuard.Check([.. T.U("{\""), 0xD4, .. T.U("\":1}")]), Is.EqualTo(JsonShape.Invalid));
        Assert.That(T.Policy().AddRevocation(RevocationKind.Sub, [.. T.U("{\""), 0xD4, .. T.U("\":1}")]),
            Is.EqualTo(ConfigError.JsonInvalid));
    }

    [TestCase("{\"a\":1,\"a\":2}]", TestName = "Repeated_name_then_trailing_data_is_invalid_JSON")]
    [TestCase("{\"a\":1,\"a\":2,", TestName = "Repeated_name_then_truncation_is_invalid_JSON")]
    [TestCase("[{\"a\":1,\"a\":2},{]", TestName = "Repeated_name_then_a_syntax_error_is_invalid_JSON")]
    public void Duplicate_check_does_not_stop_the_syntax_check(string json)
    {
        Assert.That(JsonGuard.Check(T.U(json)), Is.EqualTo(JsonShape.Invalid));
        Assert.That(JsonRender.Compact(T.U(json), new byte[64]).Error, Is.EqualTo(JsonReadError.JsonInvalid));
        Assert.That(JsonRender.Get(T.U(json), ClaimPath.Parse("a"u8, PathKind.Name, default, default), new byte[64]).Error,
            Is.EqualTo(JsonReadError.JsonInvalid));
    }

    [Test]
    public void Revocation_list_that_is_an_array_with_a_repeated_name_is_not_an_object()
    {
        Assert.That(T.Policy().AddRevocation(RevocationKind.Sub, T.U("[{\"a\":1,\"a\":2}]")),
            Is.EqualTo(ConfigError.JsonNotObject));
    }

    [Test]
    public void Repeated_name_in_well_formed_JSON_is_still_reported()
    {
        Assert.That(JsonGuard.Check(T.U("[{\"a\":1,\"a\":2},{}]")), Is.EqualTo(JsonShape.DuplicateMember));
    }

    [Test]
    public void Token_header_with_a_lone_surrogate_name_is_malformed()
    {
        string token = T.B64("{\"alg\":\"HS256\",\"\\ud800\":1}") + "." + T.B64("{\"sub\":\"a\"}") + ".c2ln";
        Assert.That(T.VerifyError(T.Policy(sig: false, exp: false), token), Is.EqualTo(TokenError.TokenMalformed));
    }

    [Test]
    public void Exchange_answer_with_a_lone_surrogate_token_is_invalid_JSON()
    {
        ExchangeResult r = TokenResponses.ParseExchange(T.U("{\"access_token\":\"\\ud800\"}"), new byte[64]);
        Assert.That(r.Error, Is.EqualTo(ResponseError.JsonInvalid));
    }

    [Test]
    public void Key_set_with_a_lone_surrogate_kid_is_invalid_JSON()
    {
        KeySetResult r = KeySetLoader.Load(T.U("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"\\udbff\",\"k\":\"AAAA\"}]}"),
            KeySetFormat.Jwks);
        Assert.That(r.Error, Is.EqualTo(ConfigError.JsonInvalid));
    }

    [Test]
    public void STS_source_with_a_lone_surrogate_name_is_refused()
    {
        using StsSettings s = Sts.Create("type", "jwt", "endpoint",
            "{\"kty\":\"oct\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}");
        Assert.That(Sts.Request(s, "{\"sub\":\"a\",\"\\ud800\":1}").Error, Is.EqualTo(StsError.SourceInvalid));
    }

    [TestCase(new byte[] { 0x5B, 0x22, 0xFF, 0x22, 0x5D }, TestName = "Quoted_path_name_with_invalid_UTF8_is_invalid")]
    [TestCase(new byte[] { 0x2E, 0x22, 0x5C, 0x75, 0x64, 0x63, 0x30, 0x30, 0x22 }, TestName = "Quoted_path_name_with_a_lone_surrogate_is_invalid")]
    public void Bad_quoted_path_names_are_invalid_paths(byte[] path)
    {
        Assert.That(ClaimPath.Parse(path, PathKind.Nested, default, default).Error, Is.EqualTo(ConfigError.PathInvalid));
    }

    [Test]
    public void Claims_projection_with_a_lone_surrogate_name_is_refused()
    {
        Assert.That(ClaimProjection.Parse("{\"\\ud800\": .a}"), Is.Null);
    }
}
