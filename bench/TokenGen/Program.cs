using System;
using System.Buffers.Text;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Tokens;

namespace NginxOAuth.Bench;

/// <summary>
/// tokengen DIR COUNT: writes DIR/keys.jwks (one key per algorithm) and
/// DIR/tokens-ALG.txt (COUNT distinct tokens each, valid for a day; the
/// first line is the "warm" token). Claims: sub, iss, aud, scope, exp, iat.
/// Encrypted tokens (auth_jwt_type): tokens-jwe-rsa.txt (RSA-OAEP-256 +
/// A256GCM), tokens-jwe-dir.txt (dir + A256GCM), tokens-nested.txt (an
/// RS256 JWS in RSA-OAEP-256 + A256GCM, cty JWT); their private RSA key and
/// the dir key are in keys.jwks with "use":"enc".
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length != 2 || !int.TryParse(args[1], out int count) || count < 1)
        {
            Console.Error.WriteLine("usage: tokengen DIR COUNT");
            return 2;
        }

        string dir = args[0];
        Directory.CreateDirectory(dir);
        SigningKey[] keys =
        [
            HmacSigningKey.Generate("HS256", "hs256"),
            RsaSigningKey.Generate("RS256", "rs256"),
            EcSigningKey.Generate("ES256", "es256"),
            EdSigningKey.Generate("Ed25519", "eddsa"),
        ];

        using RSA encRsa = RSA.Create(2048);
        byte[] dirKey = RandomNumberGenerator.GetBytes(32);
        RSAParameters p = encRsa.ExportParameters(true);
        var jwks = new JsonObject { ["keys"] = new JsonArray(keys.Select(k => (JsonNode)k.Jwk()).ToArray()) };
        jwks["keys"]!.AsArray().Add(new JsonObject
        {
            ["kty"] = "RSA", ["kid"] = "jwe-rsa", ["use"] = "enc", ["n"] = B64(p.Modulus!), ["e"] = B64(p.Exponent!),
            ["d"] = B64(p.D!), ["p"] = B64(p.P!), ["q"] = B64(p.Q!), ["dp"] = B64(p.DP!), ["dq"] = B64(p.DQ!),
            ["qi"] = B64(p.InverseQ!),
        });
        jwks["keys"]!.AsArray().Add(new JsonObject
        {
            ["kty"] = "oct", ["kid"] = "jwe-dir", ["use"] = "enc", ["k"] = B64(dirKey),
        });
        File.WriteAllText(Path.Combine(dir, "keys.jwks"), jwks.ToJsonString());

        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string Claims(int i) => $"{{\"sub\":\"user-{i}\",\"iss\":\"https://idp.bench\",\"aud\":\"api\","
            + $"\"scope\":\"read write\",\"iat\":{now},\"exp\":{now + 86400}}}";
        SigningKey rs256 = keys[1];
        string rsHeader = Encode($"{{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"{rs256.Kid}\"}}");
        var jweRsa = new string[count];
        var jweDir = new string[count];
        var nested = new string[count];
        Parallel.For(0, count, i =>
        {
            jweRsa[i] = Encrypt("{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\",\"kid\":\"jwe-rsa\"}", encRsa, null,
                Claims(i));
            jweDir[i] = Encrypt("{\"alg\":\"dir\",\"enc\":\"A256GCM\",\"kid\":\"jwe-dir\"}", null, dirKey, Claims(i));
            string input = rsHeader + "." + Encode(Claims(i));
            string jws = input + "." + Base64Url.EncodeToString(rs256.Sign(Encoding.ASCII.GetBytes(input)));
            nested[i] = Encrypt(
                "{\"alg\":\"RSA-OAEP-256\",\"enc\":\"A256GCM\",\"kid\":\"jwe-rsa\",\"cty\":\"JWT\"}",
                encRsa, null, jws);
        });
        File.WriteAllLines(Path.Combine(dir, "tokens-jwe-rsa.txt"), jweRsa);
        File.WriteAllLines(Path.Combine(dir, "tokens-jwe-dir.txt"), jweDir);
        File.WriteAllLines(Path.Combine(dir, "tokens-nested.txt"), nested);
        foreach (SigningKey key in keys)
        {
            string header = Encode($"{{\"alg\":\"{key.Alg}\",\"typ\":\"JWT\",\"kid\":\"{key.Kid}\"}}");
            var tokens = new string[count];
            Parallel.For(0, count, i =>
            {
                string payload = Encode(
                    $"{{\"sub\":\"user-{i}\",\"iss\":\"https://idp.bench\",\"aud\":\"api\","
                    + $"\"scope\":\"read write\",\"iat\":{now},\"exp\":{now + 86400}}}");
                string input = header + "." + payload;
                tokens[i] = input + "." + Base64Url.EncodeToString(key.Sign(Encoding.ASCII.GetBytes(input)));
            });
            File.WriteAllLines(Path.Combine(dir, $"tokens-{key.Kid}.txt"), tokens);
        }

        return 0;
    }

    private static string Encode(string json) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes(json));

    private static string B64(byte[] data) => Base64Url.EncodeToString(data);

    /// <summary>Compact JWE with A256GCM content: the CEK wrapped with RSA-OAEP-256, or the dir key itself.</summary>
    private static string Encrypt(string headerJson, RSA? rsa, byte[]? dirKey, string plaintext)
    {
        byte[] cek = dirKey ?? RandomNumberGenerator.GetBytes(32);
        byte[] wrapped = rsa is null ? [] : rsa.Encrypt(cek, RSAEncryptionPadding.OaepSHA256);
        string header = Encode(headerJson);
        byte[] iv = RandomNumberGenerator.GetBytes(12);
        byte[] data = Encoding.UTF8.GetBytes(plaintext);
        byte[] ciphertext = new byte[data.Length];
        byte[] tag = new byte[16];
        using (var gcm = new AesGcm(cek, 16))
        {
            gcm.Encrypt(iv, data, ciphertext, tag, Encoding.ASCII.GetBytes(header));
        }
        return header + "." + B64(wrapped) + "." + B64(iv) + "." + B64(ciphertext) + "." + B64(tag);
    }
}
