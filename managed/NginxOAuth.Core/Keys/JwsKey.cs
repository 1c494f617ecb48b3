using System;
using System.Security.Cryptography;
using System.Threading;
using NginxOAuth.Core.Interop;

namespace NginxOAuth.Core.Keys;

/// <summary>
/// A verification key, built once when its key set loads and reused for
/// every token. Verification is safe to call concurrently.
/// </summary>
public abstract class JwsKey : IDisposable
{
    private readonly byte[]? _kid;

    private protected JwsKey(byte[]? kid, KeyFamily family, JwsAlgorithm? pinned)
    {
        _kid = kid;
        Family = family;
        PinnedAlgorithm = pinned;
    }

    public KeyFamily Family { get; }

    /// <summary>The JWK "alg": when set, the key verifies only this algorithm.</summary>
    public JwsAlgorithm? PinnedAlgorithm { get; }

    public bool HasKid => _kid is not null;

    public ReadOnlySpan<byte> Kid => _kid;

    /// <summary>Family and pin match, and for HMAC the key is at least as long as the digest.</summary>
    public virtual bool CanVerify(JwsAlgorithm alg) =>
        JwsAlgorithms.Fits(alg, Family) && (PinnedAlgorithm is null || PinnedAlgorithm == alg);

    /// <summary>
    /// Verifies a signature. <paramref name="hash"/> is the digest of
    /// <paramref name="signingInput"/> for RS/PS/ES (computed once per token; empty for HS and EdDSA).
    /// </summary>
    internal abstract bool Verify(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput,
        ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature);

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
    }
}

internal sealed class RsaJwsKey : JwsKey
{
    private readonly RSA _rsa;
    private readonly int _modulusBytes;

    public RsaJwsKey(byte[]? kid, JwsAlgorithm? pinned, RSA rsa)
        : base(kid, KeyFamily.Rsa, pinned)
    {
        _rsa = rsa;
        _modulusBytes = (rsa.KeySize + 7) / 8;
    }

    internal override bool Verify(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput,
        ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != _modulusBytes)
        {
            return false;
        }

        RSASignaturePadding padding = alg is JwsAlgorithm.PS256 or JwsAlgorithm.PS384 or JwsAlgorithm.PS512
            ? RSASignaturePadding.Pss // salt length = digest length (RFC 7518 section 3.5)
            : RSASignaturePadding.Pkcs1;
        return _rsa.VerifyHash(hash, signature, JwsAlgorithms.Hash(alg), padding);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _rsa.Dispose();
        }
    }
}

internal sealed class EcJwsKey : JwsKey
{
    private readonly ECDsa _ecdsa;
    private readonly int _signatureBytes;

    public EcJwsKey(byte[]? kid, KeyFamily family, JwsAlgorithm? pinned, ECDsa ecdsa, int fieldBytes)
        : base(kid, family, pinned)
    {
        _ecdsa = ecdsa;
        _signatureBytes = 2 * fieldBytes;
    }

    internal override bool Verify(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput,
        ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature)
    {
        // JWS carries R || S, each the field size (RFC 7518 section 3.4).
        return signature.Length == _signatureBytes
            && _ecdsa.VerifyHash(hash, signature, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _ecdsa.Dispose();
        }
    }
}

internal sealed class HmacJwsKey : JwsKey
{
    private readonly byte[] _key;

    /// <summary>
    /// One reusable HMAC context per HS256/384/512, taken out while in use:
    /// the one-shot HMACSHA256.HashData fetches the MAC and digest from
    /// OpenSSL's providers on every call, which cost more than the MAC.
    /// </summary>
    private readonly IncrementalHash?[] _macs = new IncrementalHash?[3];

    public HmacJwsKey(byte[]? kid, JwsAlgorithm? pinned, byte[] key)
        : base(kid, KeyFamily.Oct, pinned)
    {
        _key = key;
    }

    /// <summary>An HSxxx never uses a key shorter than its digest (RFC 7518 section 3.2).</summary>
    public override bool CanVerify(JwsAlgorithm alg) =>
        base.CanVerify(alg) && _key.Length >= JwsAlgorithms.HashLength(alg);

    internal override bool Verify(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput,
        ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature)
    {
        int slot = alg switch
        {
            JwsAlgorithm.HS256 => 0,
            JwsAlgorithm.HS384 => 1,
            JwsAlgorithm.HS512 => 2,
            _ => -1,
        };
        if (slot < 0)
        {
            return false;
        }

        IncrementalHash hmac = Interlocked.Exchange(ref _macs[slot], null)
            ?? IncrementalHash.CreateHMAC(JwsAlgorithms.Hash(alg), _key);
        Span<byte> mac = stackalloc byte[64];
        hmac.AppendData(signingInput);
        bool done = hmac.TryGetHashAndReset(mac, out int length);
        if (Interlocked.CompareExchange(ref _macs[slot], hmac, null) is not null)
        {
            hmac.Dispose(); // another caller put one back meanwhile
        }

        bool equal = done && FixedTimeEquals(mac[..length], signature);
        CryptographicOperations.ZeroMemory(mac);
        return equal;
    }

    private static bool FixedTimeEquals(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b) =>
        CryptographicOperations.FixedTimeEquals(a, b);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            for (int i = 0; i < _macs.Length; i++)
            {
                Interlocked.Exchange(ref _macs[i], null)?.Dispose();
            }
        }
        CryptographicOperations.ZeroMemory(_key);
    }
}

/// <summary>Ed25519 / Ed448 through OpenSSL: .NET has no EdDSA.</summary>
internal sealed class EdDsaJwsKey : JwsKey
{
    private readonly EvpPKeyHandle _pkey;
    private readonly int _signatureBytes;

    private EdDsaJwsKey(byte[]? kid, KeyFamily family, JwsAlgorithm? pinned, EvpPKeyHandle pkey)
        : base(kid, family, pinned)
    {
        _pkey = pkey;
        _signatureBytes = family == KeyFamily.Ed25519 ? 64 : 114;
    }

    public static int PublicKeyLength(KeyFamily family) => family == KeyFamily.Ed25519 ? 32 : 57;

    /// <summary>Builds the EVP_PKEY from the raw public key; null when OpenSSL refuses it.</summary>
    public static unsafe EdDsaJwsKey? Create(byte[]? kid, KeyFamily family, JwsAlgorithm? pinned,
        ReadOnlySpan<byte> publicKey)
    {
        if (publicKey.Length != PublicKeyLength(family))
        {
            return null;
        }

        int type = family == KeyFamily.Ed25519 ? LibCrypto.EvpPkeyEd25519 : LibCrypto.EvpPkeyEd448;
        nint pkey;
        fixed (byte* p = publicKey)
        {
            pkey = LibCrypto.EVP_PKEY_new_raw_public_key(type, IntPtr.Zero, p, (nuint)publicKey.Length);
        }
        if (pkey == IntPtr.Zero)
        {
            LibCrypto.ERR_clear_error();
            return null;
        }
        return new EdDsaJwsKey(kid, family, pinned, new EvpPKeyHandle(pkey));
    }

    internal override unsafe bool Verify(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput,
        ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != _signatureBytes || signingInput.IsEmpty)
        {
            return false;
        }

        bool added = false;
        nint ctx = IntPtr.Zero;
        try
        {
            _pkey.DangerousAddRef(ref added);
            ctx = LibCrypto.EVP_MD_CTX_new();
            if (ctx == IntPtr.Zero
                || LibCrypto.EVP_DigestVerifyInit(ctx, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero,
                    _pkey.DangerousGetHandle()) != 1)
            {
                LibCrypto.ERR_clear_error();
                return false;
            }

            int rc;
            fixed (byte* sig = signature)
            fixed (byte* data = signingInput)
            {
                rc = LibCrypto.EVP_DigestVerify(ctx, sig, (nuint)signature.Length, data, (nuint)signingInput.Length);
            }
            if (rc != 1)
            {
                // Leave no error on this thread's queue for .NET's own OpenSSL calls.
                LibCrypto.ERR_clear_error();
            }
            return rc == 1;
        }
        finally
        {
            if (ctx != IntPtr.Zero)
            {
                LibCrypto.EVP_MD_CTX_free(ctx);
            }
            if (added)
            {
                _pkey.DangerousRelease();
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _pkey.Dispose();
        }
    }
}
