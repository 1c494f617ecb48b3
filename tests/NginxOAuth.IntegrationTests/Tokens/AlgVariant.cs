using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;

namespace NginxOAuth.IntegrationTests.Tokens;

/// <summary>
/// One JWS algorithm with its key kind: HS256/384/512, RS*, PS*, ES*,
/// ES256K, and EdDSA on Ed25519 and on Ed448.  Keys are generated once per
/// test run and cached by (variant, slot).
/// </summary>
public sealed class AlgVariant
{
    private static readonly ConcurrentDictionary<(string, int), SigningKey> _keys = new();

    private readonly Func<string, bool, SigningKey> _generate;

    private AlgVariant(string name, string alg, bool asymmetric, Func<string, bool, SigningKey> generate)
    {
        Name = name;
        Alg = alg;
        IsAsymmetric = asymmetric;
        _generate = generate;
    }

    /// <summary>A readable name, unique among variants ("EdDSA-Ed448").</summary>
    public string Name { get; }

    public string Alg { get; }

    /// <summary>False for HMAC: no PEM public key exists.</summary>
    public bool IsAsymmetric { get; }

    public static IReadOnlyList<AlgVariant> All { get; } =
    [
        Hmac("HS256"), Hmac("HS384"), Hmac("HS512"),
        Rsa("RS256"), Rsa("RS384"), Rsa("RS512"),
        Rsa("PS256"), Rsa("PS384"), Rsa("PS512"),
        Ec("ES256"), Ec("ES384"), Ec("ES512"), Ec("ES256K"),
        new("EdDSA-Ed25519", "EdDSA", true, (kid, _) => EdSigningKey.Generate("Ed25519", kid)),
        new("EdDSA-Ed448", "EdDSA", true, (kid, _) => EdSigningKey.Generate("Ed448", kid)),
    ];

    public static IEnumerable<AlgVariant> Asymmetric => All.Where(v => v.IsAsymmetric);

    public static AlgVariant Get(string name) => All.Single(v => v.Name == name);

    /// <summary>The variant's key number <paramref name="slot"/>, kid "&lt;name&gt;-&lt;slot&gt;".</summary>
    public SigningKey Key(int slot = 0) => _keys.GetOrAdd((Name, slot), k => _generate($"{Name}-{k.Item2}", false));

    /// <summary>A key of this variant that no configuration knows, with the same kid as <see cref="Key"/>(slot).</summary>
    public SigningKey Stranger(int slot = 0) =>
        _keys.GetOrAdd(("stranger-" + Name, slot), k => _generate($"{Name}-{k.Item2}", true));

    public override string ToString() => Name;

    private static AlgVariant Hmac(string alg) => new(alg, alg, false, (kid, _) => HmacSigningKey.Generate(alg, kid));

    // RSA keys are slow to make: RS*/PS* of the same slot share one key pair
    private static AlgVariant Rsa(string alg) => new(alg, alg, true, (kid, stranger) =>
    {
        int slot = int.Parse(kid[(kid.LastIndexOf('-') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        SigningKey shared = _keys.GetOrAdd((stranger ? "stranger-rsa" : "rsa", slot), _ => RsaSigningKey.Generate("RS256", kid));
        return new RsaSigningKey(alg, kid, ((RsaSigningKey)shared).Rsa);
    });

    private static AlgVariant Ec(string alg) => new(alg, alg, true, (kid, _) => EcSigningKey.Generate(alg, kid));
}
