using System;
using System.Buffers.Text;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using NginxOAuth.IntegrationTests.Tokens;

namespace NginxOAuth.Bench;

/// <summary>
/// tokengen DIR COUNT: writes DIR/keys.jwks (one key per algorithm) and
/// DIR/tokens-ALG.txt (COUNT distinct tokens each, valid for a day; the
/// first line is the "warm" token). Claims: sub, iss, aud, scope, exp, iat.
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

        var jwks = new JsonObject { ["keys"] = new JsonArray(keys.Select(k => (JsonNode)k.Jwk()).ToArray()) };
        File.WriteAllText(Path.Combine(dir, "keys.jwks"), jwks.ToJsonString());

        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
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
}
