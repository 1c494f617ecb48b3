using System;
using System.Text;
using NginxOAuth.Core.OAuth2;
using NginxOAuth.Core.Sts;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>nox_sts_response: OAuth JSON answers, WS-Trust RSTRs and faults, status mapping, the token character rule.</summary>
public sealed class StsResponseTests
{
    private static StsSettings Otx(string expiry = "300") => Sts.Create("type", "otx", "expiry", expiry);

    // ---- JSON -------------------------------------------------------------------

    [Test]
    public void Token_and_both_types_are_returned()
    {
        using StsSettings s = Otx();
        Sts.Read r = Sts.Response(s, 200, "{\"access_token\":\"new.tok\",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:jwt\",\"token_type\":\"Bearer\",\"expires_in\":3600}");
        Assert.That(r.Error, Is.EqualTo(StsError.None));
        Assert.That(r.Token, Is.EqualTo("new.tok"));
        Assert.That(r.IssuedType, Is.EqualTo("urn:ietf:params:oauth:token-type:jwt"));
        Assert.That(r.TokenType, Is.EqualTo("Bearer"));
        Assert.That(r.Ttl, Is.EqualTo(300));
    }

    [Test]
    public void Absent_types_are_reported_as_absent()
    {
        using StsSettings s = Otx();
        Sts.Read r = Sts.Response(s, 200, "{\"access_token\":\"t\",\"token_type\":7}");
        Assert.That(r.IssuedType, Is.Null);
        Assert.That(r.TokenType, Is.Null);
    }

    [TestCase("3600", 300L, TestName = "Long_expires_in_is_capped_by_expiry")]
    [TestCase("100", 90L, TestName = "Expires_in_keeps_a_tenth_as_margin")]
    [TestCase("1000", 300L, TestName = "Margin_is_at_most_30_seconds_before_the_cap")]
    [TestCase("5", 5L, TestName = "Short_expires_in_has_no_whole_second_margin")]
    [TestCase("0", 0L, TestName = "Zero_expires_in_is_not_cached")]
    [TestCase("-5", 0L, TestName = "Negative_expires_in_is_not_cached")]
    [TestCase("2.5", 2L, TestName = "Fractional_expires_in_is_floored")]
    [TestCase("\"60\"", 54L, TestName = "String_of_digits_expires_in_is_read")]
    [TestCase("\"soon\"", 300L, TestName = "Non_numeric_string_expires_in_counts_as_absent")]
    [TestCase("1e999", 300L, TestName = "Overflowing_expires_in_is_capped")]
    [TestCase("-1e999", 0L, TestName = "Negatively_overflowing_expires_in_is_not_cached")]
    [TestCase("1e2", 90L, TestName = "Exponent_form_expires_in_reads_as_its_value")]
    [TestCase("100.99999999999999999999", 90L, TestName = "Long_fraction_expires_in_is_floored_exactly")]
    [TestCase("1e300", 300L, TestName = "Huge_expires_in_is_capped")]
    [TestCase("-1e300", 0L, TestName = "Hugely_negative_expires_in_is_not_cached")]
    [TestCase("99999999999999999999999", 300L, TestName = "Integer_beyond_int64_is_capped")]
    [TestCase("null", 300L, TestName = "Null_expires_in_counts_as_absent")]
    public void Expires_in_bounds_the_ttl(string expiresIn, long ttl)
    {
        using StsSettings s = Otx();
        Sts.Read r = Sts.Response(s, 200, "{\"access_token\":\"t\",\"expires_in\":" + expiresIn + "}");
        Assert.That(r.Error, Is.EqualTo(StsError.None));
        Assert.That(r.Ttl, Is.EqualTo(ttl));
    }

    [Test]
    public void Without_expires_in_the_ttl_is_the_expiry()
    {
        using StsSettings s = Otx("42");
        Assert.That(Sts.Response(s, 200, "{\"access_token\":\"t\"}").Ttl, Is.EqualTo(42));
    }

    [TestCase(200, "{\"error\":\"invalid_grant\"}", StsError.Rejected, "invalid_grant", TestName = "Error_in_a_2xx_is_an_error_answer")]
    [TestCase(400, "{\"error\":\"invalid_request\",\"error_description\":\"x\"}", StsError.Rejected, "invalid_request", TestName = "Invalid_request_is_rejected")]
    [TestCase(400, "{\"error\":\"invalid_grant\"}", StsError.Rejected, "invalid_grant", TestName = "Invalid_grant_is_rejected")]
    [TestCase(401, "{\"error\":\"invalid_client\"}", StsError.Rejected, "invalid_client", TestName = "Invalid_client_is_rejected")]
    [TestCase(400, "{\"error\":\"invalid_target\"}", StsError.Rejected, "invalid_target", TestName = "Invalid_target_is_rejected")]
    [TestCase(403, "{\"error\":\"access_denied\"}", StsError.Forbidden, "access_denied", TestName = "Access_denied_is_forbidden")]
    [TestCase(400, "{\"error\":\"invalid_scope\"}", StsError.Forbidden, "invalid_scope", TestName = "Invalid_scope_is_forbidden")]
    [TestCase(403, "{\"error\":\"insufficient_scope\"}", StsError.Forbidden, "insufficient_scope", TestName = "Insufficient_scope_is_forbidden")]
    [TestCase(200, "{\"error\":\"access_denied\",\"access_token\":\"t\"}", StsError.Forbidden, "access_denied", TestName = "Error_wins_over_a_token")]
    [TestCase(400, "<html>bad</html>", StsError.Rejected, "", TestName = "Non_JSON_4xx_is_rejected_without_a_code")]
    [TestCase(404, "", StsError.Rejected, "", TestName = "Empty_4xx_is_rejected_without_a_code")]
    [TestCase(400, "{\"error\":42}", StsError.Rejected, "", TestName = "Non_string_error_is_rejected_without_a_code")]
    [TestCase(400, "{\"error\":\"bad\\r\\nX-Injected: 1\"}", StsError.Rejected, "bad??X-Injected: 1", TestName = "Error_code_is_sanitised_to_printable_ASCII")]
    [TestCase(400, "{\"error\":\"caf\\u00e9\"}", StsError.Rejected, "caf?", TestName = "Non_ASCII_in_an_error_code_is_replaced")]
    public void Error_answers_are_mapped(int status, string body, StsError expected, string code)
    {
        using StsSettings s = Otx();
        Sts.Read r = Sts.Response(s, status, body);
        Assert.That(r.Error, Is.EqualTo(expected));
        Assert.That(r.Token, Is.EqualTo(code));
    }

    [Test]
    public void Long_error_code_is_capped()
    {
        using StsSettings s = Otx();
        Sts.Read r = Sts.Response(s, 400, "{\"error\":\"" + new string('e', 500) + "\"}");
        Assert.That(r.Token, Has.Length.EqualTo(128));
    }

    [TestCase(500, TestName = "Status_500_is_a_server_error")]
    [TestCase(503, TestName = "Status_503_is_a_server_error")]
    [TestCase(302, TestName = "Redirect_is_a_server_error")]
    [TestCase(101, TestName = "Informational_status_is_a_server_error")]
    [TestCase(0, TestName = "No_status_is_a_server_error")]
    [TestCase(600, TestName = "Status_600_is_a_server_error")]
    public void Statuses_other_than_2xx_and_4xx_are_server_errors(int status)
    {
        using StsSettings s = Otx();
        Assert.That(Sts.Response(s, status, "{\"access_token\":\"t\"}").Error, Is.EqualTo(StsError.ServerError));
    }

    [TestCase("{\"token_type\":\"Bearer\"}", StsError.ResponseNoToken, TestName = "Missing_access_token_is_no_token")]
    [TestCase("{\"access_token\":\"\"}", StsError.ResponseNoToken, TestName = "Empty_access_token_is_no_token")]
    [TestCase("{\"access_token\":42}", StsError.ResponseNoToken, TestName = "Numeric_access_token_is_no_token")]
    [TestCase("{\"access_token\":\"t\"", StsError.JsonInvalid, TestName = "Truncated_JSON_is_invalid")]
    [TestCase("{\"access_token\":\"a\",\"access_token\":\"b\"}", StsError.JsonInvalid, TestName = "Duplicate_member_is_invalid")]
    [TestCase("[\"t\"]", StsError.JsonNotObject, TestName = "Array_is_not_an_object")]
    [TestCase("", StsError.JsonInvalid, TestName = "Empty_2xx_body_is_invalid")]
    [TestCase("{\"access_token\":\"a\\r\\nb\"}", StsError.TokenChars, TestName = "Token_with_CRLF_is_refused")]
    [TestCase("{\"access_token\":\"a\\u0000b\"}", StsError.TokenChars, TestName = "Token_with_NUL_is_refused")]
    [TestCase("{\"access_token\":\"a\\u007fb\"}", StsError.TokenChars, TestName = "Token_with_DEL_is_refused")]
    [TestCase("{\"access_token\":\"a\\u001bb\"}", StsError.TokenChars, TestName = "Token_with_ESC_is_refused")]
    [TestCase("{\"access_token\":\"a\\tb c\"}", StsError.None, TestName = "Token_with_tab_and_space_is_accepted")]
    [TestCase("{\"access_token\":\"jeton-\u00e9t\u00e9-\u2713\"}", StsError.None, TestName = "Token_with_UTF8_is_accepted")]
    // JsonGuard refuses lone surrogate escapes as invalid JSON (FuzzFindingTests); 502 either way
    [TestCase("{\"access_token\":\"\\ud800\"}", StsError.JsonInvalid, TestName = "Token_with_a_lone_surrogate_is_refused")]
    public void Token_answers_are_checked(string body, StsError expected)
    {
        using StsSettings s = Otx();
        Assert.That(Sts.Response(s, 200, body).Error, Is.EqualTo(expected));
    }

    [Test]
    public void Invalid_UTF8_body_is_refused()
    {
        using StsSettings s = Otx();
        byte[] body = [.. T.U("{\"access_token\":\"a"), 0xC3, 0x28, .. T.U("\"}")];
        Assert.That(Sts.Response(s, 200, body).Error, Is.EqualTo(StsError.Utf8Invalid));
    }

    [Test]
    public void Body_over_1_MiB_is_too_large()
    {
        using StsSettings s = Otx();
        string body = "{\"access_token\":\"t\",\"pad\":\"" + new string('x', 1024 * 1024) + "\"}";
        Assert.That(Sts.Response(s, 200, body).Error, Is.EqualTo(StsError.ResponseTooLarge));
    }

    [Test]
    public void Small_output_buffer_is_reported()
    {
        using StsSettings s = Otx();
        byte[] body = T.U("{\"access_token\":\"abcdef\",\"token_type\":\"Bearer\"}");
        var output = new byte[5];
        StsResponseResult r = StsExchange.ReadResponse(s, 200, body, T.Now, output);
        Assert.That(r.Error, Is.EqualTo(StsError.BufferTooSmall));
        Assert.That(r.TokenLength, Is.EqualTo(12));
    }

    // Each case is named: a name made of the token would hold control
    // characters, and a case named with one (\u0001) was listed but never
    // run under a --filter, so the count of a filtered run was one short.
    [TestCase("abc", true, TestName = "Token_character_rule_accepts_ASCII")]
    [TestCase("a b\tc", true, TestName = "Token_character_rule_accepts_space_and_tab")]
    [TestCase("é✓", true, TestName = "Token_character_rule_accepts_non_ASCII_UTF8")]
    [TestCase("a\rb", false, TestName = "Token_character_rule_refuses_CR")]
    [TestCase("a\nb", false, TestName = "Token_character_rule_refuses_LF")]
    [TestCase("a\0b", false, TestName = "Token_character_rule_refuses_NUL")]
    [TestCase("a\u007fb", false, TestName = "Token_character_rule_refuses_DEL")]
    [TestCase("a\u0001b", false, TestName = "Token_character_rule_refuses_other_C0_controls")]
    public void Token_character_rule(string token, bool ok)
    {
        Assert.That(TokenChars.Valid(T.U(token)), Is.EqualTo(ok));
    }

    [Test]
    public void Token_character_rule_refuses_invalid_UTF8()
    {
        Assert.That(TokenChars.Valid(new byte[] { 0x61, 0xC0, 0xAF }), Is.False);
        Assert.That(TokenChars.Valid(new byte[] { 0x61, 0xE2, 0x9C }), Is.False);
    }

    // ---- WS-Trust ----------------------------------------------------------------

    private const string S12 = "http://www.w3.org/2003/05/soap-envelope";
    private const string S11 = "http://schemas.xmlsoap.org/soap/envelope/";
    private const string T13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
    private const string T05 = "http://schemas.xmlsoap.org/ws/2005/02/trust";
    private const string Wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    private const string Wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

    private const string Saml2 =
        "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_1\"   Version=\"2.0\"><saml:Issuer>idp &amp; co</saml:Issuer><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignatureValue>YWJj</ds:SignatureValue></ds:Signature></saml:Assertion>";

    private const string Saml1 =
        "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:1.0:assertion\" MajorVersion=\"1\" MinorVersion=\"1\"><saml:Conditions/></saml:Assertion>";

    private static StsSettings WsTrust(string expiry = "300") =>
        Sts.Create("type", "wstrust", "endpoint", Sts.Endpoint, "value_type", "urn:vt", "expiry", expiry);

    private static string Rstr(string token, string soap = S12, string trust = T13, bool collection = true,
        string extra = "") =>
        "<s:Envelope xmlns:s=\"" + soap + "\"><s:Header/><s:Body>"
        + (collection ? "<t:RequestSecurityTokenResponseCollection xmlns:t=\"" + trust + "\">" : "")
        + "<t:RequestSecurityTokenResponse xmlns:t=\"" + trust + "\">" + extra
        + "<t:RequestedSecurityToken>" + token + "</t:RequestedSecurityToken>"
        + "</t:RequestSecurityTokenResponse>"
        + (collection ? "</t:RequestSecurityTokenResponseCollection>" : "")
        + "</s:Body></s:Envelope>";

    [TestCase(S12, T13, true)]
    [TestCase(S12, T13, false)]
    [TestCase(S11, T13, true)]
    [TestCase(S11, T05, false)]
    [TestCase(S12, T05, true)]
    public void SAML_assertion_is_returned_byte_for_byte(string soap, string trust, bool collection)
    {
        using StsSettings s = WsTrust();
        Sts.Read r = Sts.Response(s, 200, Rstr(Saml2, soap, trust, collection));
        Assert.That(r.Error, Is.EqualTo(StsError.None));
        Assert.That(r.Token, Is.EqualTo(Saml2));
        Assert.That(r.IssuedType, Is.Null);
        Assert.That(r.Ttl, Is.EqualTo(300));
    }

    [Test]
    public void SAML_1_1_assertion_is_returned()
    {
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, Rstr(Saml1)).Token, Is.EqualTo(Saml1));
    }

    [Test]
    public void Pretty_printed_answer_with_the_assertion_after_other_children()
    {
        string body =
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n"
            + "<s:Envelope xmlns:s=\"" + S12 + "\" xmlns:a=\"http://www.w3.org/2005/08/addressing\">\r\n"
            + "  <s:Header>\r\n    <a:Action>urn:x</a:Action>\r\n  </s:Header>\r\n"
            + "  <s:Body>\r\n"
            + "    <trust:RequestSecurityTokenResponseCollection xmlns:trust=\"" + T13 + "\">\r\n"
            + "      <trust:RequestSecurityTokenResponse>\r\n"
            + "        <trust:TokenType>urn:tt</trust:TokenType>\r\n"
            + "        <trust:RequestedSecurityToken>\r\n"
            + "          <!-- the token -->\r\n"
            + "          <Other xmlns=\"urn:other\"/>\r\n"
            + "          " + Saml2 + "\r\n"
            + "        </trust:RequestedSecurityToken>\r\n"
            + "      </trust:RequestSecurityTokenResponse>\r\n"
            + "    </trust:RequestSecurityTokenResponseCollection>\r\n"
            + "  </s:Body>\r\n</s:Envelope>\r\n";
        using StsSettings s = WsTrust();
        Sts.Read r = Sts.Response(s, 200, body);
        Assert.That(r.Error, Is.EqualTo(StsError.None));
        Assert.That(r.Token, Is.EqualTo(Saml2));
    }

    [Test]
    public void Assertion_after_non_ASCII_text_on_the_same_line_is_still_exact()
    {
        string token = Saml2.Replace("idp &amp; co", "idp é ✓ 𝄞");
        string body = Rstr("<x:Note xmlns:x=\"urn:x\">é✓𝄞</x:Note>" + token);
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, body).Token, Is.EqualTo(token));
    }

    [Test]
    public void Assertion_using_an_ancestor_namespace_gets_the_declaration()
    {
        string body = "<s:Envelope xmlns:s=\"" + S12 + "\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"><s:Body>"
            + "<t:RequestSecurityTokenResponse xmlns:t=\"" + T13 + "\"><t:RequestedSecurityToken>"
            + "<saml:Assertion ID=\"_1\"><saml:Issuer>idp</saml:Issuer></saml:Assertion>"
            + "</t:RequestedSecurityToken></t:RequestSecurityTokenResponse></s:Body></s:Envelope>";
        using StsSettings s = WsTrust();
        Sts.Read r = Sts.Response(s, 200, body);
        Assert.That(r.Error, Is.EqualTo(StsError.None));
        var doc = new System.Xml.XmlDocument();
        doc.LoadXml(r.Token);
        Assert.That(doc.DocumentElement!.NamespaceURI, Is.EqualTo("urn:oasis:names:tc:SAML:2.0:assertion"));
        // every in-scope declaration, as inclusive canonicalization sees the element
        Assert.That(r.Token, Does.StartWith("<saml:Assertion xmlns:").And.Contain(" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"")
            .And.EndWith(" ID=\"_1\"><saml:Issuer>idp</saml:Issuer></saml:Assertion>"));
    }

    [TestCase(0, TestName = "Binary_token_on_one_line_is_decoded")]
    [TestCase(64, TestName = "Binary_token_wrapped_at_64_columns_is_decoded")]
    [TestCase(76, TestName = "Binary_token_wrapped_at_76_columns_is_decoded")]
    public void Binary_security_token_is_base64_decoded(int wrap)
    {
        string jwt = "eyJhbGciOiJSUzI1NiJ9." + new string('a', 150) + ".sig";
        string b64 = Convert.ToBase64String(T.U(jwt));
        if (wrap > 0)
        {
            var sb = new StringBuilder("\r\n");
            for (int i = 0; i < b64.Length; i += wrap)
            {
                sb.Append("    ").Append(b64, i, Math.Min(wrap, b64.Length - i)).Append("\r\n");
            }
            b64 = sb.ToString();
        }
        string token = "<wsse:BinarySecurityToken xmlns:wsse=\"" + Wsse + "\" ValueType=\"urn:vt\" EncodingType=\"x#Base64Binary\">"
            + b64 + "</wsse:BinarySecurityToken>";
        using StsSettings s = WsTrust();
        Sts.Read r = Sts.Response(s, 200, Rstr(token));
        Assert.That(r.Error, Is.EqualTo(StsError.None));
        Assert.That(r.Token, Is.EqualTo(jwt));
    }

    [Test]
    public void Binary_token_decoding_to_control_characters_is_refused()
    {
        string token = "<wsse:BinarySecurityToken xmlns:wsse=\"" + Wsse + "\">" + Convert.ToBase64String(T.U("a\r\nb"))
            + "</wsse:BinarySecurityToken>";
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, Rstr(token)).Error, Is.EqualTo(StsError.TokenChars));
    }

    [Test]
    public void Pretty_printed_assertion_breaks_the_token_character_rule()
    {
        string token = "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">\n  <saml:Issuer>x</saml:Issuer>\n</saml:Assertion>";
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, Rstr(token)).Error, Is.EqualTo(StsError.TokenChars));
    }

    [Test]
    public void Lifetime_bounds_the_ttl()
    {
        string lifetime = "<t:Lifetime><u:Created xmlns:u=\"" + Wsu + "\">2023-11-14T22:13:20Z</u:Created>"
            + "<u:Expires xmlns:u=\"" + Wsu + "\">2023-11-14T22:15:00.000Z</u:Expires></t:Lifetime>";
        using StsSettings s = WsTrust();
        Sts.Read r = Sts.Response(s, 200, Rstr(Saml2, extra: lifetime));
        Assert.That(r.Error, Is.EqualTo(StsError.None));
        Assert.That(r.Ttl, Is.EqualTo(90)); // 100 s left, a tenth as margin
    }

    [Test]
    public void Expired_lifetime_is_not_cached()
    {
        string lifetime = "<t:Lifetime><u:Expires xmlns:u=\"" + Wsu + "\">2020-01-01T00:00:00Z</u:Expires></t:Lifetime>";
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, Rstr(Saml2, extra: lifetime)).Ttl, Is.Zero);
    }

    [TestCase("<Other xmlns=\"urn:x\">t</Other>", TestName = "Unknown_token_element_is_no_token")]
    [TestCase("", TestName = "Empty_requested_token_is_no_token")]
    [TestCase("<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"/>", TestName = "Empty_assertion_is_no_token")]
    [TestCase("<saml:Assertion xmlns:saml=\"urn:other\">x</saml:Assertion>", TestName = "Assertion_of_another_namespace_is_no_token")]
    [TestCase("<wsse:BinarySecurityToken xmlns:wsse=\"" + Wsse + "\">!!notbase64</wsse:BinarySecurityToken>", TestName = "Bad_base64_is_no_token")]
    public void RSTR_without_a_usable_token(string token)
    {
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, Rstr(token)).Error, Is.EqualTo(StsError.ResponseNoToken));
    }

    [TestCase("<s:Envelope xmlns:s=\"" + S12 + "\"><s:Body/></s:Envelope>", TestName = "Empty_body_is_invalid")]
    [TestCase("<s:Envelope xmlns:s=\"urn:not-soap\"><s:Body/></s:Envelope>", TestName = "Unknown_envelope_namespace_is_invalid")]
    [TestCase("<t:RequestSecurityTokenResponse xmlns:t=\"" + T13 + "\"/>", TestName = "RSTR_without_envelope_is_invalid")]
    [TestCase("<s:Envelope xmlns:s=\"" + S12 + "\"><s:Body><x/></s:Body></s:Envelope>", TestName = "Body_without_RSTR_is_invalid")]
    [TestCase("<s:Envelope xmlns:s=\"" + S12 + "\"><s:Body>", TestName = "Truncated_envelope_is_invalid")]
    [TestCase("{\"access_token\":\"t\"}", TestName = "JSON_is_invalid_XML")]
    [TestCase("", TestName = "Empty_answer_is_invalid_XML")]
    public void Not_an_RSTR_is_invalid_XML(string body)
    {
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, body).Error, Is.EqualTo(StsError.XmlInvalid));
    }

    [Test]
    public void Garbage_after_a_good_RSTR_is_invalid()
    {
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, Rstr(Saml2) + "<extra/>").Error, Is.EqualTo(StsError.XmlInvalid));
    }

    [TestCase("<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>", TestName = "External_entity_is_refused")]
    [TestCase("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;\">]>", TestName = "Entity_expansion_is_refused")]
    [TestCase("<!DOCTYPE s:Envelope SYSTEM \"http://127.0.0.1:1/x.dtd\">", TestName = "External_DTD_is_refused")]
    public void DTD_is_refused(string doctype)
    {
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, "<?xml version=\"1.0\"?>" + doctype + Rstr(Saml2)).Error, Is.EqualTo(StsError.XmlDtd));
    }

    [TestCase(S11, "<s:Fault><faultcode>wst:InvalidRequest</faultcode><faultstring>no</faultstring></s:Fault>", "wst:InvalidRequest", TestName = "SOAP_1_1_fault_code_is_returned")]
    [TestCase(S12, "<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason><s:Text xml:lang=\"en\">no</s:Text></s:Reason></s:Fault>", "s:Sender", TestName = "SOAP_1_2_fault_code_is_returned")]
    [TestCase(S12, "<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>a:FailedAuthentication</s:Value></s:Subcode></s:Code></s:Fault>", "a:FailedAuthentication", TestName = "SOAP_1_2_subcode_is_preferred")]
    [TestCase(S12, "<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>a:One</s:Value><s:Subcode><s:Value>a:Two</s:Value></s:Subcode></s:Subcode></s:Code></s:Fault>", "a:Two", TestName = "Innermost_subcode_is_preferred")]
    [TestCase(S12, "<s:Fault/>", "", TestName = "Fault_without_code_is_rejected_without_a_code")]
    [TestCase(S11, "<s:Fault><faultcode>\n  bad\u00e9code  \n</faultcode></s:Fault>", "bad?code", TestName = "Fault_code_is_trimmed_and_sanitised")]
    public void SOAP_fault_is_rejected_with_its_code(string soap, string fault, string code)
    {
        string body = "<s:Envelope xmlns:s=\"" + soap + "\"><s:Body>" + fault + "</s:Body></s:Envelope>";
        using StsSettings s = WsTrust();
        foreach (int status in new[] { 500, 200, 400 })
        {
            Sts.Read r = Sts.Response(s, status, body);
            Assert.That(r.Error, Is.EqualTo(StsError.Rejected), "status " + status);
            Assert.That(r.Token, Is.EqualTo(code));
        }
    }

    [TestCase(500, "<html>oops</html>", StsError.ServerError, TestName = "Wstrust_500_without_a_fault_is_a_server_error")]
    [TestCase(502, "", StsError.ServerError, TestName = "Wstrust_502_is_a_server_error")]
    [TestCase(401, "Unauthorized", StsError.Rejected, TestName = "Wstrust_401_is_rejected")]
    [TestCase(302, "", StsError.ServerError, TestName = "Wstrust_redirect_is_a_server_error")]
    public void Wstrust_statuses_are_mapped(int status, string body, StsError expected)
    {
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, status, body).Error, Is.EqualTo(expected));
    }

    [Test]
    public void Wstrust_answer_over_1_MiB_is_too_large()
    {
        string body = Rstr(Saml2, extra: "<!--" + new string('x', 1024 * 1024) + "-->");
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, body).Error, Is.EqualTo(StsError.ResponseTooLarge));
    }

    [Test]
    public void Wstrust_answer_just_under_1_MiB_is_read()
    {
        string small = Rstr(Saml2, extra: "<!---->");
        string body = Rstr(Saml2, extra: "<!--" + new string('x', 1024 * 1024 - small.Length) + "-->");
        Assert.That(Encoding.UTF8.GetByteCount(body), Is.EqualTo(1024 * 1024));
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, body).Error, Is.EqualTo(StsError.None));
    }

    [Test]
    public void Wstrust_invalid_UTF8_is_refused()
    {
        byte[] body = [.. T.U(Rstr(Saml2)[..40]), 0xFF, .. T.U(Rstr(Saml2)[40..])];
        using StsSettings s = WsTrust();
        Assert.That(Sts.Response(s, 200, body).Error, Is.EqualTo(StsError.Utf8Invalid));
    }

    [Test]
    public void Jwt_type_has_no_answer_to_read()
    {
        using System.Security.Cryptography.ECDsa ec = T.NewEc("P-256");
        using StsSettings s = Sts.Create("type", "jwt", "endpoint", Sts.EcPrivateJwk(ec, "P-256"));
        Assert.That(Sts.Response(s, 200, "{}").Error, Is.EqualTo(StsError.Argument));
    }
}
