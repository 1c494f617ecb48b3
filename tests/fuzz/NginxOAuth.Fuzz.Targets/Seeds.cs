using System;
using System.Buffers.Text;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography;
using System.Text;

namespace NginxOAuth.Fuzz;

/// <summary>
/// Seed corpora, one list per target: the RFC vectors and inputs shaped like
/// the core tests' bodies and the fake servers' answers (built here), plus
/// the string literals of the core tests themselves (harvested from their
/// sources when the repository is at hand), so every edge case a test names
/// is a starting point. Written to disk by the driver at build time; nothing
/// binary is committed.
/// </summary>
public static class Seeds
{
    /// <summary>Seeds above this size are left out: mutating them is slow, and no target needs them.</summary>
    public const int MaxSeed = 8 * 1024;

    /// <summary>Harvested literals per target at most (the built seeds always go in).</summary>
    public const int MaxHarvested = 150;

    public static Dictionary<string, List<byte[]>> Build(string? repositoryRoot)
    {
        var seeds = new Dictionary<string, List<byte[]>>();
        foreach (FuzzTarget target in FuzzTargets.All)
        {
            seeds[target.Name] = new List<byte[]>();
        }

        void Add(string target, string text) => Put(seeds[target], Encoding.UTF8.GetBytes(text));

        foreach (string token in Tokens())
        {
            Add("jws", token);
            Add("sts-request", token);
        }
        foreach (string token in JweFixtures.SeedTokens())
        {
            Add("jwe", token);
        }
        foreach (string payload in Payloads())
        {
            Add("jwt-claims", payload);
            Add("sts-request", payload);
            Add("json", payload);
        }
        Add("jwt-claims", "{\"alg\":\"RS256\",\"kid\":\"k1\",\"typ\":\"JWT\"}");
        Add("jwt-claims", "{\"alg\":\"none\"}");
        Add("jwt-claims", "{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"b64\":false}");
        foreach (string document in KeyDocuments())
        {
            Add("keyset", document);
        }
        foreach (string answer in OAuth2Answers())
        {
            Add("oauth2-response", answer);
            Add("sts-json", answer);
        }
        foreach (string value in JsonValues())
        {
            Add("json", value);
        }
        foreach (string path in Paths())
        {
            Add("claim-path", path);
        }
        foreach (string answer in SoapAnswers())
        {
            Add("sts-wstrust", answer);
        }
        foreach (string projection in Projections())
        {
            Add("sts-claims", projection);
        }
        Add("sts-request", Saml2);
        Add("sts-request", "<x:Token xmlns:x=\"urn:x\" a=\"1\">t&amp;<![CDATA[c]]><!--c--></x:Token>");

        if (repositoryRoot is not null)
        {
            Harvest(repositoryRoot, seeds);
        }
        return seeds;
    }

    /// <summary>Writes each target's seeds to <paramref name="directory"/>/target/ (emptied first).</summary>
    public static void Write(string directory, Dictionary<string, List<byte[]>> seeds)
    {
        foreach ((string target, List<byte[]> inputs) in seeds)
        {
            string folder = Path.Combine(directory, target);
            if (Directory.Exists(folder))
            {
                Directory.Delete(folder, true);
            }
            Directory.CreateDirectory(folder);
            for (int i = 0; i < inputs.Count; i++)
            {
                File.WriteAllBytes(Path.Combine(folder, $"seed-{i:D4}"), inputs[i]);
            }
        }
    }

    private static void Put(List<byte[]> list, byte[] seed)
    {
        if (seed.Length == 0 || seed.Length > MaxSeed)
        {
            return;
        }
        foreach (byte[] existing in list)
        {
            if (existing.AsSpan().SequenceEqual(seed))
            {
                return;
            }
        }
        list.Add(seed);
    }

    // ---- built seeds -------------------------------------------------------

    private static string B64(string text) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(text));

    /// <summary>HS256 with RFC 7515 A.1's key, which the jws target's signed policy holds: these verify.</summary>
    private static string Hs256(string header, string payload)
    {
        string input = B64(header) + "." + B64(payload);
        byte[] key = Base64Url.DecodeFromChars(
            "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
        return input + "." + Base64Url.EncodeToString(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(input)));
    }

    private static IEnumerable<string> Tokens()
    {
        yield return Vectors.Rfc7515A1Token;
        yield return Vectors.Rfc7515A2Token;
        yield return Vectors.Rfc7515A3Token;
        yield return Vectors.Rfc7515A4Token;
        yield return Vectors.Rfc7520Rs256Token;
        yield return Vectors.Rfc7520Ps384Token;
        yield return Vectors.Rfc7520Es512Token;
        yield return Vectors.Rfc7520Hs256Token;
        yield return Vectors.Rfc8037Token;
        foreach (string payload in Payloads())
        {
            yield return Hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload);
        }
        yield return Hs256("{\"alg\":\"HS256\",\"kid\":\"k1\"}", "{\"iss\":\"joe\",\"exp\":1300819380}");
        yield return Hs256("{\"alg\":\"HS256\",\"kid\":\"018c0ae5-4d9b-471b-bfd6-eef314bc7037\"}", "{\"exp\":1}");
        yield return Hs256("{\"\\u0061lg\":\"HS256\"}", "{\"iss\":\"joe\",\"exp\":1300819380}");
        yield return Hs256("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{}");
        yield return B64("{\"alg\":\"none\"}") + "." + B64("{\"sub\":\"a\"}") + ".";
        yield return B64("{\"alg\":\"RS256\",\"kid\":7}") + "." + B64("{}") + ".c2ln";
        yield return B64("{\"alg\":\"RSA-OAEP\",\"enc\":\"A256GCM\"}") + ".a.b.c.d";
    }

    private static IEnumerable<string> Payloads()
    {
        yield return "{\"iss\":\"joe\",\"exp\":1300819380,\"http://example.com/is_root\":true}";
        yield return "{\"iss\":\"joe\",\"sub\":\"alice\",\"exp\":1300819380,\"nbf\":1300000000,\"iat\":1300000000,"
            + "\"aud\":[\"api\",\"x\"],\"scope\":\"read write\",\"realm_access\":{\"roles\":[\"admin\",\"user\"]},"
            + "\"resource_access\":{\"api\":{\"roles\":[\"read\",\"write\"]}},\"org\":{\"dept.name\":{\"id\":7}},"
            + "\"x y\":[0,\"one\"],\"groups\":\"g1\",\"age\":-1,\"email\":\"a@example.com\",\"a\":{\"b c\":1},"
            + "\"list\":[\"first\"]}";
        yield return "{\"exp\":17961582910e-1,\"nbf\":-1e999,\"sub\":\"mallory\"}";
        yield return "{\"exp\":1300819380.5,\"nbf\":1.3e9,\"iat\":1E3,\"aud\":\"api\"}";
        yield return "{\"exp\":1e999,\"sub\":\"\\u0000\\ud83d\\ude00\",\"aud\":[]}";
        yield return "{\"exp\":99999999999999999999999,\"sub\":{\"id\":1},\"groups\":[\"g1\",\"g2\"]}";
        yield return "{\"a\":1,\"a\":2}";
        yield return "{\"a\":1,\"\\u0061\":2}";
        yield return "{\"realm_access\":{\"roles\":[[\"admin\"],{\"x\":null}]},\"exp\":\"1300819380\"}";
    }

    private static IEnumerable<string> KeyDocuments()
    {
        string[] jwks =
        [
            Vectors.Rfc7515A1Jwk, Vectors.Rfc7515A2Jwk, Vectors.Rfc7515A3Jwk, Vectors.Rfc7515A4Jwk,
            Vectors.Rfc7520RsaJwk, Vectors.Rfc7520EcJwk, Vectors.Rfc7520OctJwk, Vectors.Rfc8037Jwk,
        ];
        foreach (string jwk in jwks)
        {
            yield return "{\"keys\":[" + jwk + "]}";
        }
        yield return "{\"keys\":[" + string.Join(",", jwks) + "]}";
        yield return "{\"keys\":[{\"kty\":\"RSA\",\"use\":\"enc\",\"alg\":\"RSA-OAEP\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
            + "{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"},{\"kty\":\"EC\",\"crv\":\"secp256k1\",\"x\":\"AA\",\"y\":\"AA\"}]}";
        yield return "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"kid\":\"\",\"x\":\"AA==\"}]}";
        yield return "{\"keys\":{}}";
        yield return "{\"keys\":[]}";

        // keyval: PEM public keys by kid, made from the RFC keys
        using RSA rsa = RSA.Create();
        rsa.ImportParameters(new RSAParameters
        {
            Modulus = Base64Url.DecodeFromChars(Field(Vectors.Rfc7515A2Jwk, "n")),
            Exponent = Base64Url.DecodeFromChars(Field(Vectors.Rfc7515A2Jwk, "e")),
        });
        using ECDsa ec = ECDsa.Create(new ECParameters
        {
            Curve = ECCurve.NamedCurves.nistP256,
            Q = new ECPoint
            {
                X = Base64Url.DecodeFromChars(Field(Vectors.Rfc7515A3Jwk, "x")),
                Y = Base64Url.DecodeFromChars(Field(Vectors.Rfc7515A3Jwk, "y")),
            },
        });
        byte[] ed25519 = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
            .. Base64Url.DecodeFromChars(Field(Vectors.Rfc8037Jwk, "x"))];
        string spki = rsa.ExportSubjectPublicKeyInfoPem();
        string pkcs1 = rsa.ExportRSAPublicKeyPem();
        string ecPem = ec.ExportSubjectPublicKeyInfoPem();
        string edPem = PemEncoding.WriteString("PUBLIC KEY", ed25519);
        yield return "{\"rsa\":" + Json(spki) + "}";
        yield return "{\"rsa1\":" + Json(pkcs1) + ",\"ec\":" + Json(ecPem) + ",\"ed\":" + Json(edPem) + "}";
        yield return "{\"bad\":" + Json("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") + "}";
    }

    private static string Field(string jwk, string name)
    {
        string marker = "\"" + name + "\":\"";
        int start = jwk.IndexOf(marker, StringComparison.Ordinal) + marker.Length;
        return jwk[start..jwk.IndexOf('"', start)];
    }

    private static string Json(string text) => "\"" + System.Text.Json.JsonEncodedText.Encode(text) + "\"";

    private static IEnumerable<string> OAuth2Answers()
    {
        yield return "{\"active\":true,\"sub\":\"alice\",\"scope\":\"read write\",\"client_id\":\"app\",\"exp\":1300819380,"
            + "\"realm_access\":{\"roles\":[\"admin\"]},\"ext\":{\"tenant\":\"t1\"},\"aud\":[\"api\"]}";
        yield return "{\"active\":false}";
        yield return "{\"active\":\"true\",\"exp\":1.5}";
        yield return "{\"active\":true,\"exp\":-100}";
        yield return "{\"access_token\":\"new.tok\",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:jwt\","
            + "\"token_type\":\"Bearer\",\"expires_in\":3600}";
        yield return "{\"access_token\":\"t\",\"token_type\":\"N_A\",\"expires_in\":\"60\"}";
        yield return "{\"access_token\":\"NEW\\r\\nX-Injected: yes\"}";
        yield return "{\"access_token\":\"jeton-\u00e9t\u00e9-\u2713\",\"expires_in\":2.5}";
        yield return "{\"error\":\"invalid_grant\",\"error_description\":\"x\"}";
        yield return "{\"error\":\"access_denied\",\"access_token\":\"t\"}";
        yield return "[\"t\"]";
    }

    private static IEnumerable<string> JsonValues()
    {
        yield return "\"alice\"";
        yield return "[\"api\",1,null,true]";
        yield return "{\"admin\":1,\"user\":[2]}";
        yield return "1.5e3";
        yield return "-0";
        yield return "true";
        yield return "null";
        yield return "[[[[[[[[1]]]]]]]]";
        yield return "{\"a\":{\"b\":{\"c\":[{}]}}}";
        yield return "\"\\ud83d\\ude00\\u00e9\\n\"";
        yield return "1300819380";
    }

    private static IEnumerable<string> Paths()
    {
        yield return "sub";
        yield return ".a.b[1].c";
        yield return "a.b";
        yield return "org::'dept.name'::id";
        yield return "a\0b\0c";
        yield return ".[\"x y\"][2][0]";
        yield return ".\"x.y\"";
        yield return "\"caf\u00e9\"";
        yield return ".realm_access.roles[0]";
        yield return "[0]";
        yield return ".a[\"x.y\"]";
        yield return ".\"\\u00e9\"";
    }

    private const string S12 = "http://www.w3.org/2003/05/soap-envelope";
    private const string S11 = "http://schemas.xmlsoap.org/soap/envelope/";
    private const string T13 = "http://docs.oasis-open.org/ws-sx/ws-trust/200512";
    private const string T05 = "http://schemas.xmlsoap.org/ws/2005/02/trust";
    private const string Wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    private const string Wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";

    private const string Saml2 =
        "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_1\" Version=\"2.0\">"
        + "<saml:Issuer>idp &amp; co</saml:Issuer><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">"
        + "<ds:SignatureValue>YWJj</ds:SignatureValue></ds:Signature></saml:Assertion>";

    private static string Rstr(string token, string soap = S12, string trust = T13, bool collection = true,
        string extra = "") =>
        "<s:Envelope xmlns:s=\"" + soap + "\"><s:Header/><s:Body>"
        + (collection ? "<t:RequestSecurityTokenResponseCollection xmlns:t=\"" + trust + "\">" : "")
        + "<t:RequestSecurityTokenResponse xmlns:t=\"" + trust + "\">" + extra
        + "<t:RequestedSecurityToken>" + token + "</t:RequestedSecurityToken>"
        + "</t:RequestSecurityTokenResponse>"
        + (collection ? "</t:RequestSecurityTokenResponseCollection>" : "")
        + "</s:Body></s:Envelope>";

    private static IEnumerable<string> SoapAnswers()
    {
        string lifetime = "<t:Lifetime><u:Created xmlns:u=\"" + Wsu + "\">2011-03-22T18:40:00Z</u:Created>"
            + "<u:Expires xmlns:u=\"" + Wsu + "\">2011-03-22T18:45:00.000Z</u:Expires></t:Lifetime>";
        string binary = "<wsse:BinarySecurityToken xmlns:wsse=\"" + Wsse + "\" ValueType=\"urn:vt\">"
            + Convert.ToBase64String(Encoding.ASCII.GetBytes(Vectors.Rfc7515A1Token)) + "</wsse:BinarySecurityToken>";
        yield return Rstr(Saml2);
        yield return Rstr(Saml2, S11, T05, collection: false, extra: lifetime);
        yield return Rstr(binary, S12, T13, collection: false);
        yield return Rstr("<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:1.0:assertion\" MajorVersion=\"1\">"
            + "<saml:Conditions/></saml:Assertion>", S11, T13);
        yield return "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n<s:Envelope xmlns:s=\"" + S12
            + "\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">\r\n  <s:Body>\r\n"
            + "    <trust:RequestSecurityTokenResponse xmlns:trust=\"" + T13 + "\">\r\n"
            + "      <trust:TokenType>urn:tt</trust:TokenType>\r\n      <trust:RequestedSecurityToken>\r\n"
            + "        <!-- the token --><Other xmlns=\"urn:other\"/>\r\n"
            + "        <saml:Assertion ID=\"_1\"><saml:Issuer>idp \u00e9 \u2713</saml:Issuer></saml:Assertion>\r\n"
            + "      </trust:RequestedSecurityToken>\r\n    </trust:RequestSecurityTokenResponse>\r\n"
            + "  </s:Body>\r\n</s:Envelope>\r\n";
        yield return "<s:Envelope xmlns:s=\"" + S11 + "\"><s:Body><s:Fault><faultcode>wst:InvalidRequest</faultcode>"
            + "<faultstring>no</faultstring></s:Fault></s:Body></s:Envelope>";
        yield return "<s:Envelope xmlns:s=\"" + S12 + "\"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value>"
            + "<s:Subcode><s:Value>a:One</s:Value><s:Subcode><s:Value>a:Two</s:Value></s:Subcode></s:Subcode>"
            + "</s:Code><s:Reason><s:Text xml:lang=\"en\">no</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>";
        yield return "<?xml version=\"1.0\"?><!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
            + Rstr("&xxe;");
        yield return "<s:Envelope xmlns:s=\"" + S12 + "\"><s:Body/></s:Envelope>";
    }

    private static IEnumerable<string> Projections()
    {
        yield return "{sub, email, roles: .realm_access.roles, \"full name\": .a[\"b c\"]}";
        yield return "{}";
        yield return "{ a : .list[0] , b: .a.\"x.y\"[0], \"\\u00e9\": .\"\u00e9\" }";
        yield return "{iss, exp, jti: .jti, n}";
    }

    // ---- literals of the core tests -----------------------------------------

    /// <summary>Adds the string literals of tests/NginxOAuth.Core.Tests/*.cs to the targets whose input they look like.</summary>
    private static void Harvest(string root, Dictionary<string, List<byte[]>> seeds)
    {
        string folder = Path.Combine(root, "tests", "NginxOAuth.Core.Tests");
        if (!Directory.Exists(folder))
        {
            return;
        }
        var harvested = new Dictionary<string, int>();
        string[] files = Directory.GetFiles(folder, "*.cs");
        Array.Sort(files, StringComparer.Ordinal);
        foreach (string file in files)
        {
            foreach (string literal in Literals(File.ReadAllText(file)))
            {
                foreach (string target in TargetsFor(literal))
                {
                    harvested.TryGetValue(target, out int n);
                    if (n < MaxHarvested)
                    {
                        harvested[target] = n + 1;
                        Put(seeds[target], Encoding.UTF8.GetBytes(literal));
                    }
                }
            }
        }
    }

    private static IEnumerable<string> TargetsFor(string literal)
    {
        if (literal.Length < 2)
        {
            yield break;
        }
        char first = literal[0];
        if (first is '{' or '[')
        {
            yield return "json";
            yield return "jwt-claims";
            yield return "oauth2-response";
            yield return "sts-json";
            if (literal.Contains("kty") || literal.Contains("keys") || literal.Contains("-----BEGIN"))
            {
                yield return "keyset";
            }
            if (first == '{')
            {
                yield return "sts-claims";
                yield return "sts-request";
            }
        }
        if (first == '<')
        {
            yield return "sts-wstrust";
            yield return "sts-request";
        }
        if (first is '.' or '[' || (literal.Length < 64 && literal.IndexOfAny([' ', '{', '<', '=']) < 0))
        {
            yield return "claim-path";
        }
        if (literal.StartsWith("eyJ", StringComparison.Ordinal) && literal.Split('.').Length >= 3)
        {
            yield return literal.Split('.').Length == 5 ? "jwe" : "jws";
        }
    }

    /// <summary>
    /// The regular string literals of C# source, unescaped. Verbatim, raw
    /// and interpolated literals, character literals and comments are
    /// skipped; good enough for seeds, not a C# lexer.
    /// </summary>
    internal static IEnumerable<string> Literals(string source)
    {
        int i = 0;
        while (i < source.Length)
        {
            char c = source[i];
            if (c == '/' && i + 1 < source.Length && source[i + 1] == '/')
            {
                i = source.IndexOf('\n', i) is int nl && nl >= 0 ? nl : source.Length;
            }
            else if (c == '/' && i + 1 < source.Length && source[i + 1] == '*')
            {
                int end = source.IndexOf("*/", i + 2, StringComparison.Ordinal);
                i = end < 0 ? source.Length : end + 2;
            }
            else if (c == '\'')
            {
                i = SkipChar(source, i);
            }
            else if (c == '"' && i + 2 < source.Length && source[i + 1] == '"' && source[i + 2] == '"')
            {
                int end = source.IndexOf("\"\"\"", i + 3, StringComparison.Ordinal);
                i = end < 0 ? source.Length : end + 3;
            }
            else if (c == '"' && i > 0 && source[i - 1] is '@' or '$')
            {
                i = SkipQuoted(source, i, verbatim: source[i - 1] == '@');
            }
            else if (c == '"')
            {
                var sb = new StringBuilder();
                int j = i + 1;
                bool ok = ReadRegular(source, ref j, sb);
                i = j;
                if (ok)
                {
                    yield return sb.ToString();
                }
            }
            else
            {
                i++;
            }
        }
    }

    private static int SkipChar(string s, int i)
    {
        int j = i + 1;
        if (j < s.Length && s[j] == '\\')
        {
            j += 2;
        }
        int close = s.IndexOf('\'', j);
        return close < 0 || close - i > 12 ? i + 1 : close + 1;
    }

    private static int SkipQuoted(string s, int i, bool verbatim)
    {
        int j = i + 1;
        while (j < s.Length)
        {
            if (verbatim && s[j] == '"' && j + 1 < s.Length && s[j + 1] == '"')
            {
                j += 2;
            }
            else if (!verbatim && s[j] == '\\')
            {
                j += 2;
            }
            else if (s[j] == '"' || (!verbatim && s[j] == '\n'))
            {
                return j + 1;
            }
            else
            {
                j++;
            }
        }
        return j;
    }

    private static bool ReadRegular(string s, ref int j, StringBuilder sb)
    {
        while (j < s.Length)
        {
            char c = s[j++];
            if (c == '"')
            {
                return true;
            }
            if (c == '\n')
            {
                return false;
            }
            if (c != '\\')
            {
                sb.Append(c);
                continue;
            }
            if (j >= s.Length)
            {
                return false;
            }
            char e = s[j++];
            switch (e)
            {
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case '0': sb.Append('\0'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'v': sb.Append('\v'); break;
                case 'u' when j + 4 <= s.Length:
                    sb.Append((char)Convert.ToInt32(s.Substring(j, 4), 16));
                    j += 4;
                    break;
                case 'U' when j + 8 <= s.Length:
                    sb.Append(char.ConvertFromUtf32(Convert.ToInt32(s.Substring(j, 8), 16)));
                    j += 8;
                    break;
                case 'x':
                    int start = j;
                    while (j < s.Length && j - start < 4 && Uri.IsHexDigit(s[j]))
                    {
                        j++;
                    }
                    sb.Append((char)Convert.ToInt32(s[start..j], 16));
                    break;
                default: sb.Append(e); break;
            }
        }
        return false;
    }
}
