using System;
using System.Collections.Generic;
using System.Security.Cryptography;
using System.Text;
using NginxOAuth.Core.Keys;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

public sealed class KeySetTests
{
    private static readonly RSA Rsa2048 = RSA.Create(2048);

    private static string Oct(int bytes, string? alg = null, string? kid = null) =>
        T.OctJwk(new byte[bytes].Fill(0x41), kid, alg);

    private static IEnumerable<TestCaseData> BadDocuments()
    {
        TestCaseData Case(string json, ConfigError error, int detail, string name) =>
            new TestCaseData(json, error, detail).SetName(name);

        yield return Case("{", ConfigError.JsonInvalid, -1, "Truncated_JSON_is_invalid");
        yield return Case("[]", ConfigError.JsonNotObject, -1, "Array_document_is_not_an_object");
        yield return Case("{}", ConfigError.JsonEmpty, -1, "Object_without_keys_is_empty");
        yield return Case("{\"keys\":[]}", ConfigError.JsonEmpty, -1, "Empty_keys_array_is_empty");
        yield return Case("{\"keys\":{}}", ConfigError.KeyBadParameter, -1, "Keys_member_that_is_not_an_array_is_refused");
        yield return Case("{\"keys\":[],\"keys\":[]}", ConfigError.JsonInvalid, -1, "Duplicate_keys_member_is_invalid");
        yield return Case(T.Jwks("{\"kty\":\"XYZ\"}"), ConfigError.KeyUnknownKty, 0, "Unknown_kty_is_refused");
        yield return Case(T.Jwks("{\"k\":\"QUFB\"}"), ConfigError.KeyBadParameter, 0, "Missing_kty_is_refused");
        yield return Case(T.Jwks(Oct(16), "{\"kty\":\"XYZ\"}"), ConfigError.KeyHmacTooShort, 0, "Set_without_a_usable_key_fails_for_its_first_key");
        yield return Case(T.Jwks(Oct(32, "HS999")), ConfigError.KeyUnknownAlg, 0, "Unknown_alg_is_refused");
        yield return Case(T.Jwks(Oct(32, "none")), ConfigError.KeyUnknownAlg, 0, "Alg_none_on_a_key_is_refused");
        yield return Case(T.Jwks(Oct(32, "RS256")), ConfigError.KeyAlgMismatch, 0, "Oct_key_pinned_to_RS256_is_a_mismatch");
        yield return Case(T.Jwks(T.RsaJwk(Rsa2048, alg: "HS256")), ConfigError.KeyAlgMismatch, 0, "RSA_key_pinned_to_HS256_is_a_mismatch");
        yield return Case(T.Jwks(T.RsaJwk(Rsa2048, alg: "ES256")), ConfigError.KeyAlgMismatch, 0, "RSA_key_pinned_to_ES256_is_a_mismatch");
        yield return Case(T.Jwks(T.EcJwk(T.NewEc("P-256"), "P-256", alg: "ES384")), ConfigError.KeyAlgMismatch, 0, "P256_key_pinned_to_ES384_is_a_mismatch");
        yield return Case(T.Jwks(T.EcJwk(T.NewEc("P-256"), "P-256", alg: "ES256K")), ConfigError.KeyAlgMismatch, 0, "P256_key_pinned_to_ES256K_is_a_mismatch");
        yield return Case(T.Jwks("{\"kty\":\"EC\",\"crv\":\"P-192\",\"x\":\"QUFB\",\"y\":\"QUFB\"}"), ConfigError.KeyUnknownCurve, 0, "Unknown_EC_curve_is_refused");
        yield return Case(T.Jwks("{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"QUFB\"}"), ConfigError.KeyUnknownCurve, 0, "X25519_is_not_a_signature_curve");
        yield return Case(T.Jwks("{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"QUFB\"}"), ConfigError.KeyBadParameter, 0, "Ed25519_key_of_the_wrong_length_is_refused");
        yield return Case(T.Jwks(Oct(16)), ConfigError.KeyHmacTooShort, 0, "Unpinned_oct_key_under_32_bytes_is_too_short");
        yield return Case(T.Jwks(Oct(40, "HS384")), ConfigError.KeyHmacTooShort, 0, "HS384_pinned_key_under_48_bytes_is_too_short");
        yield return Case(T.Jwks(Oct(63, "HS512")), ConfigError.KeyHmacTooShort, 0, "HS512_pinned_key_under_64_bytes_is_too_short");
        yield return Case(T.Jwks(Oct(32, kid: "")), ConfigError.KeyEmptyKid, 0, "Empty_kid_is_refused");
        yield return Case(T.Jwks("{\"kty\":\"oct\",\"kid\":7,\"k\":\"" + T.B64(T.HmacSecret) + "\"}"), ConfigError.KeyBadParameter, 0, "Numeric_kid_is_refused");
        yield return Case(T.Jwks("{\"kty\":\"oct\",\"k\":\"\"}"), ConfigError.KeyBadParameter, 0, "Empty_k_is_refused");
        yield return Case(T.Jwks("{\"kty\":\"oct\",\"k\":\"a*b\"}"), ConfigError.KeyBadParameter, 0, "Non_base64url_k_is_refused");
        yield return Case(T.Jwks("{\"kty\":\"RSA\",\"e\":\"AQAB\"}"), ConfigError.KeyBadParameter, 0, "RSA_key_without_n_is_refused");
        yield return Case(T.Jwks(T.RsaJwk(RSA.Create(1024))), ConfigError.KeyRsaTooSmall, 0, "RSA_1024_is_too_small");
        yield return Case(T.Jwks("{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"" + T.B64(HugeModulus()) + "\"}"), ConfigError.KeyRsaTooLarge, 0, "RSA_over_16384_bits_is_too_large");
        yield return Case(T.Jwks(T.RsaJwk(Rsa2048).Replace("\"AQAB\"", "\"AQAA\"")), ConfigError.KeyBadParameter, 0, "Even_RSA_exponent_is_refused");
        yield return Case(T.Jwks(BadPoint()), ConfigError.KeyBadParameter, 0, "EC_point_off_the_curve_is_refused");
        yield return Case(T.Jwks(T.EcJwk(T.NewEc("P-384"), "P-256")), ConfigError.KeyBadParameter, 0, "EC_coordinates_of_the_wrong_length_are_refused");
        yield return Case("{\"keys\":[" + string.Join(",", Repeat(Oct(32), 257)) + "]}", ConfigError.KeysTooMany, -1, "More_than_256_keys_is_too_many");
        yield return Case("{\"keys\":[" + Oct(32) + "]," + new string(' ', 1024 * 1024) + "\"x\":1}", ConfigError.KeysTooLarge, -1, "Document_over_1_MiB_is_too_large");
    }

    [TestCaseSource(nameof(BadDocuments))]
    public void Bad_JWKS_is_refused_with_its_code(string json, ConfigError error, int detail)
    {
        KeySetResult result = KeySetLoader.Load(T.U(json), KeySetFormat.Jwks);
        Assert.That(result.Error, Is.EqualTo(error));
        Assert.That(result.Detail, Is.EqualTo(detail));
        Assert.That(result.KeySet, Is.Null);
    }

    [Test]
    public void Every_key_type_loads()
    {
        using var ed = new EdKey(false);
        using var ed448 = new EdKey(true);
        string jwks = T.Jwks(
            T.RsaJwk(Rsa2048, "r", "RS256", "sig"),
            T.EcJwk(T.NewEc("P-256"), "P-256", "p256"),
            T.EcJwk(T.NewEc("P-384"), "P-384", "p384"),
            T.EcJwk(T.NewEc("P-521"), "P-521", "p521"),
            T.EcJwk(T.NewEc("secp256k1"), "secp256k1", "k1", "ES256K"),
            ed.Jwk("ed"),
            ed448.Jwk("ed448"),
            T.OctJwk(T.HmacSecret, "h", "HS512"));
        using KeySet keys = T.Keys(jwks);
        Assert.That(keys.Count, Is.EqualTo(8));
        Assert.That(keys.Keys[0].PinnedAlgorithm, Is.EqualTo(JwsAlgorithm.RS256));
        Assert.That(keys.Keys[4].Family, Is.EqualTo(KeyFamily.Secp256k1));
        Assert.That(keys.Keys[6].Family, Is.EqualTo(KeyFamily.Ed448));
    }

    [Test]
    public void Encryption_keys_are_dropped()
    {
        using KeySet keys = T.Keys(T.Jwks(
            T.RsaJwk(Rsa2048, "enc", use: "enc"),
            T.RsaJwk(Rsa2048, "oaep", alg: "RSA-OAEP"),
            "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"use\":\"enc\",\"x\":\"QUFB\"}",
            T.RsaJwk(Rsa2048, "sig", use: "sig")));
        Assert.That(keys.Count, Is.EqualTo(1));
        Assert.That(Encoding.UTF8.GetString(keys.Keys[0].Kid), Is.EqualTo("sig"));
    }

    [Test]
    public void Padded_key_parameters_are_tolerated()
    {
        using KeySet keys = T.Keys(T.Jwks("{\"kty\":\"oct\",\"k\":\"" + Convert.ToBase64String(T.HmacSecret.AsSpan(0, 32).ToArray()).Replace('+', '-').Replace('/', '_') + "\"}"));
        Assert.That(keys.Count, Is.EqualTo(1));
    }

    [Test]
    public void Disposed_key_set_holds_no_keys()
    {
        KeySet keys = T.Keys(T.Jwks(Oct(32)));
        keys.Dispose();
        Assert.That(keys.Count, Is.Zero);
        keys.Dispose(); // idempotent
    }

    // ---- keyval ---------------------------------------------------------

    private static IEnumerable<TestCaseData> PemKeys()
    {
        yield return new TestCaseData("RSA").SetName("Keyval_RSA_SubjectPublicKeyInfo_loads");
        yield return new TestCaseData("RSA1").SetName("Keyval_RSA_PKCS1_public_key_loads");
        yield return new TestCaseData("P-256").SetName("Keyval_P256_loads");
        yield return new TestCaseData("P-384").SetName("Keyval_P384_loads");
        yield return new TestCaseData("P-521").SetName("Keyval_P521_loads");
        yield return new TestCaseData("secp256k1").SetName("Keyval_secp256k1_loads");
        yield return new TestCaseData("Ed25519").SetName("Keyval_Ed25519_loads");
        yield return new TestCaseData("Ed448").SetName("Keyval_Ed448_loads");
    }

    [TestCaseSource(nameof(PemKeys))]
    public void Keyval_PEM_key_verifies_its_token(string kind)
    {
        string pem;
        string alg;
        Func<byte[], byte[]> sign;
        IDisposable owner;
        switch (kind)
        {
            case "RSA":
            case "RSA1":
                RSA rsa = RSA.Create(2048);
                pem = kind == "RSA" ? rsa.ExportSubjectPublicKeyInfoPem() : rsa.ExportRSAPublicKeyPem();
                alg = "RS256";
                sign = T.Rsa(rsa, JwsAlgorithm.RS256);
                owner = rsa;
                break;
            case "Ed25519":
            case "Ed448":
                var ed = new EdKey(kind == "Ed448");
                pem = ed.Pem();
                alg = "EdDSA";
                sign = ed.Sign;
                owner = ed;
                break;
            default:
                ECDsa ec = T.NewEc(kind);
                pem = ec.ExportSubjectPublicKeyInfoPem();
                JwsAlgorithm a = kind switch
                {
                    "P-256" => JwsAlgorithm.ES256,
                    "P-384" => JwsAlgorithm.ES384,
                    "P-521" => JwsAlgorithm.ES512,
                    _ => JwsAlgorithm.ES256K,
                };
                alg = a.ToString();
                sign = T.Ec(ec, a);
                owner = ec;
                break;
        }

        using (owner)
        {
            string doc = "{\"k1\":" + System.Text.Json.JsonSerializer.Serialize(pem, JsonContext.Default.String) + "}";
            using KeySet keys = T.Keys(doc, KeySetFormat.KeyVal);
            string token = T.Token("{\"alg\":\"" + alg + "\",\"kid\":\"k1\"}", "{\"exp\":2000000000}", sign);
            Assert.That(T.VerifyError(T.Policy(keys), token), Is.EqualTo(TokenError.None));
        }
    }

    private static IEnumerable<TestCaseData> BadKeyval()
    {
        using RSA rsa = RSA.Create(2048);
        // private RSA and P-256/384/521 keys are JWE decryption keys (JweVerifierTests); a secp256k1 one is nothing
        using ECDsa k1 = ECDsa.Create(ECCurve.CreateFromValue("1.3.132.0.10"));
        string priv = System.Text.Json.JsonSerializer.Serialize(k1.ExportPkcs8PrivateKeyPem(), JsonContext.Default.String);
        string small = System.Text.Json.JsonSerializer.Serialize(RSA.Create(1024).ExportSubjectPublicKeyInfoPem(), JsonContext.Default.String);
        string good = System.Text.Json.JsonSerializer.Serialize(rsa.ExportSubjectPublicKeyInfoPem(), JsonContext.Default.String);

        yield return new TestCaseData("{}", ConfigError.JsonEmpty, -1).SetName("Empty_keyval_is_empty");
        yield return new TestCaseData("{\"a\":\"not a pem\"}", ConfigError.KeyBadPem, 0).SetName("Keyval_text_that_is_not_PEM_is_refused");
        yield return new TestCaseData("{\"a\":" + priv + "}", ConfigError.KeyBadPem, 0).SetName("Keyval_private_key_that_decrypts_nothing_is_refused");
        yield return new TestCaseData("{\"a\":" + small + ",\"b\":42}", ConfigError.KeyRsaTooSmall, 0).SetName("Keyval_without_a_usable_key_fails_for_its_first_key");
        yield return new TestCaseData("{\"\":" + good + "}", ConfigError.KeyEmptyKid, 0).SetName("Keyval_empty_kid_is_refused");
        yield return new TestCaseData("{\"a\":" + small + "}", ConfigError.KeyRsaTooSmall, 0).SetName("Keyval_RSA_1024_is_too_small");
        yield return new TestCaseData("{\"a\":" + good + ",\"a\":" + good + "}", ConfigError.JsonInvalid, -1).SetName("Keyval_duplicate_kid_is_invalid");
    }

    [TestCaseSource(nameof(BadKeyval))]
    public void Bad_keyval_is_refused_with_its_code(string json, ConfigError error, int detail)
    {
        KeySetResult result = KeySetLoader.Load(T.U(json), KeySetFormat.KeyVal);
        Assert.That(result.Error, Is.EqualTo(error));
        Assert.That(result.Detail, Is.EqualTo(detail));
    }

    private static byte[] HugeModulus()
    {
        byte[] n = RandomNumberGenerator.GetBytes(16384 / 8 + 1);
        n[0] = 0x80;
        n[^1] |= 1;
        return n;
    }

    private static string BadPoint()
    {
        var x = new byte[32];
        var y = new byte[32];
        x[31] = 1;
        y[31] = 1;
        return "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"" + T.B64(x) + "\",\"y\":\"" + T.B64(y) + "\"}";
    }

    private static IEnumerable<string> Repeat(string s, int n)
    {
        for (int i = 0; i < n; i++)
        {
            yield return s;
        }
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class JsonContext : System.Text.Json.Serialization.JsonSerializerContext
{
}

internal static class ArrayFill
{
    public static byte[] Fill(this byte[] array, byte value)
    {
        Array.Fill(array, value);
        return array;
    }
}
