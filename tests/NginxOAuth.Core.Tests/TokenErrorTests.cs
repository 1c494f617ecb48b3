using System;
using System.Text;
using NginxOAuth.Core.OAuth2;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>nox_token_error: how a token endpoint's answer is classified before the token is read (auth_oauth2_token's exchange; the same codes as STS).</summary>
public sealed class TokenErrorTests
{
    [TestCase(200, "{\"access_token\":\"n\"}", TokenErrorKind.None, "", TestName = "Token_response_is_no_error")]
    [TestCase(200, "not json", TokenErrorKind.None, "", TestName = "A_2xx_that_is_not_JSON_is_left_to_the_token_reader")]
    [TestCase(400, "{\"error\":\"invalid_grant\"}", TokenErrorKind.Rejected, "invalid_grant", TestName = "Invalid_grant_is_rejected")]
    [TestCase(400, "{\"error\":\"invalid_target\"}", TokenErrorKind.Rejected, "invalid_target", TestName = "Invalid_target_is_rejected")]
    [TestCase(400, "{\"error\":\"unauthorized_client\"}", TokenErrorKind.Rejected, "unauthorized_client", TestName = "Unauthorized_client_is_rejected")]
    [TestCase(400, "{\"error\":\"invalid_scope\"}", TokenErrorKind.Forbidden, "invalid_scope", TestName = "Invalid_scope_is_forbidden")]
    [TestCase(403, "{\"error\":\"access_denied\"}", TokenErrorKind.Forbidden, "access_denied", TestName = "Access_denied_is_forbidden")]
    [TestCase(400, "{\"error\":\"insufficient_scope\"}", TokenErrorKind.Forbidden, "insufficient_scope", TestName = "Insufficient_scope_is_forbidden")]
    [TestCase(200, "{\"error\":\"invalid_grant\"}", TokenErrorKind.Rejected, "invalid_grant", TestName = "Error_in_a_2xx_is_a_refusal")]
    [TestCase(400, "<html>", TokenErrorKind.Rejected, "", TestName = "A_4xx_without_JSON_is_rejected_without_a_code")]
    [TestCase(400, "{\"error\":7}", TokenErrorKind.Rejected, "", TestName = "A_non_string_error_has_no_code")]
    [TestCase(400, "{\"error\":\"bad\\u0007code\"}", TokenErrorKind.Rejected, "bad?code", TestName = "Control_characters_in_the_code_become_question_marks")]
    [TestCase(500, "{\"error\":\"server_error\"}", TokenErrorKind.ServerError, "", TestName = "A_5xx_is_a_server_error")]
    [TestCase(503, "{\"error\":\"temporarily_unavailable\"}", TokenErrorKind.ServerError, "", TestName = "A_503_is_a_server_error")]
    [TestCase(302, "", TokenErrorKind.ServerError, "", TestName = "A_redirect_is_a_server_error")]
    public void Answer_is_classified(int status, string body, TokenErrorKind kind, string code)
    {
        byte[] output = new byte[TokenErrors.ErrorMax];
        TokenErrorResult result = TokenErrors.Classify(status, Encoding.UTF8.GetBytes(body), output);

        Assert.That(result.Kind, Is.EqualTo(kind));
        Assert.That(Encoding.ASCII.GetString(output, 0, result.CodeLength), Is.EqualTo(code));
    }

    [Test]
    public void Long_code_is_cut_at_the_limit()
    {
        byte[] output = new byte[TokenErrors.ErrorMax];
        string body = "{\"error\":\"" + new string('e', 500) + "\"}";

        TokenErrorResult result = TokenErrors.Classify(400, Encoding.UTF8.GetBytes(body), output);

        Assert.That(result.Kind, Is.EqualTo(TokenErrorKind.Rejected));
        Assert.That(result.CodeLength, Is.EqualTo(TokenErrors.ErrorMax));
    }

}
