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
    private readonly VerifyContexts _contexts;
    private readonly int _modulusBytes;

    private RsaJwsKey(byte[]? kid, JwsAlgorithm? pinned, EvpPKeyHandle pkey, int modulusBytes)
        : base(kid, KeyFamily.Rsa, pinned)
    {
        // one context per RS256, RS384, RS512, PS256, PS384, PS512
        _contexts = new VerifyContexts(pkey, 6, Setup);
        _modulusBytes = modulusBytes;
    }

    /// <summary>
    /// Moves a checked .NET key into OpenSSL (through its DER form) and
    /// disposes it; null when OpenSSL refuses the key.
    /// </summary>
    public static RsaJwsKey? Create(byte[]? kid, JwsAlgorithm? pinned, RSA rsa)
    {
        using (rsa)
        {
            EvpPKeyHandle? pkey = VerifyContexts.FromSubjectPublicKeyInfo(rsa.ExportSubjectPublicKeyInfo());
            return pkey is null ? null : new RsaJwsKey(kid, pinned, pkey, (rsa.KeySize + 7) / 8);
        }
    }

    private static int Slot(JwsAlgorithm alg) => alg switch
    {
        JwsAlgorithm.RS256 => 0,
        JwsAlgorithm.RS384 => 1,
        JwsAlgorithm.RS512 => 2,
        JwsAlgorithm.PS256 => 3,
        JwsAlgorithm.PS384 => 4,
        JwsAlgorithm.PS512 => 5,
        _ => -1,
    };

    private static bool Setup(nint ctx, int slot)
    {
        nint md = Digests.Md(32 + 16 * (slot % 3)); // SHA-256, -384, -512
        if (md == IntPtr.Zero || LibCrypto.EVP_PKEY_CTX_set_signature_md(ctx, md) != 1)
        {
            return false;
        }
        if (slot < 3)
        {
            return LibCrypto.EVP_PKEY_CTX_set_rsa_padding(ctx, LibCrypto.RsaPkcs1Padding) == 1;
        }
        // PSS: MGF1 with the same digest, salt length = digest length (RFC 7518 section 3.5)
        return LibCrypto.EVP_PKEY_CTX_set_rsa_padding(ctx, LibCrypto.RsaPkcs1PssPadding) == 1
            && LibCrypto.EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) == 1
            && LibCrypto.EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, LibCrypto.RsaPssSaltLenDigest) == 1;
    }

    internal override bool Verify(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput,
        ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature)
    {
        int slot = Slot(alg);
        return slot >= 0
            && signature.Length == _modulusBytes
            && hash.Length == JwsAlgorithms.HashLength(alg)
            && _contexts.Verify(slot, hash, signature);
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _contexts.Dispose();
        }
    }
}

internal sealed class EcJwsKey : JwsKey
{
    private readonly VerifyContexts _contexts;
    private readonly int _fieldBytes;
    private readonly int _digestBytes;

    private EcJwsKey(byte[]? kid, KeyFamily family, JwsAlgorithm? pinned, EvpPKeyHandle pkey, int fieldBytes)
        : base(kid, family, pinned)
    {
        _fieldBytes = fieldBytes;
        // each curve has one algorithm, hence one digest and one context
        _digestBytes = family switch
        {
            KeyFamily.P384 => 48,
            KeyFamily.P521 => 64,
            _ => 32,
        };
        _contexts = new VerifyContexts(pkey, 1, Setup);
    }

    /// <summary>As <see cref="RsaJwsKey.Create"/>, for a checked .NET ECDsa key (the point is on its curve).</summary>
    public static EcJwsKey? Create(byte[]? kid, KeyFamily family, JwsAlgorithm? pinned, ECDsa ecdsa, int fieldBytes)
    {
        using (ecdsa)
        {
            EvpPKeyHandle? pkey = VerifyContexts.FromSubjectPublicKeyInfo(ecdsa.ExportSubjectPublicKeyInfo());
            return pkey is null ? null : new EcJwsKey(kid, family, pinned, pkey, fieldBytes);
        }
    }

    private bool Setup(nint ctx, int slot)
    {
        nint md = Digests.Md(_digestBytes);
        return md != IntPtr.Zero && LibCrypto.EVP_PKEY_CTX_set_signature_md(ctx, md) == 1;
    }

    internal override bool Verify(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput,
        ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature)
    {
        // JWS carries R || S, each the field size (RFC 7518 section 3.4);
        // OpenSSL takes the DER form of the two integers.
        if (signature.Length != 2 * _fieldBytes || hash.Length != _digestBytes)
        {
            return false;
        }
        Span<byte> der = stackalloc byte[2 * _fieldBytes + 16];
        int length = EncodeDerSignature(signature[.._fieldBytes], signature[_fieldBytes..], der);
        return _contexts.Verify(0, hash, der[..length]);
    }

    /// <summary>SEQUENCE { INTEGER r, INTEGER s } from two unsigned big-endian values.</summary>
    internal static int EncodeDerSignature(ReadOnlySpan<byte> r, ReadOnlySpan<byte> s, Span<byte> der)
    {
        int content = IntegerLength(r) + IntegerLength(s);
        int at = 0;
        der[at++] = 0x30;
        if (content >= 0x80)
        {
            der[at++] = 0x81; // contents are at most 2 * (2 + 1 + 66) bytes
        }
        der[at++] = (byte)content;
        at += WriteInteger(r, der[at..]);
        at += WriteInteger(s, der[at..]);
        return at;
    }

    private static ReadOnlySpan<byte> Minimal(ReadOnlySpan<byte> value)
    {
        int i = 0;
        while (i < value.Length - 1 && value[i] == 0)
        {
            i++;
        }
        return value[i..];
    }

    private static int IntegerLength(ReadOnlySpan<byte> value)
    {
        ReadOnlySpan<byte> v = Minimal(value);
        return 2 + v.Length + (v[0] >= 0x80 ? 1 : 0);
    }

    private static int WriteInteger(ReadOnlySpan<byte> value, Span<byte> der)
    {
        ReadOnlySpan<byte> v = Minimal(value);
        int pad = v[0] >= 0x80 ? 1 : 0; // a leading 0 keeps the INTEGER positive
        der[0] = 0x02;
        der[1] = (byte)(v.Length + pad);
        der[2] = 0;
        v.CopyTo(der[(2 + pad)..]);
        return 2 + pad + v.Length;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _contexts.Dispose();
        }
    }
}

internal sealed class HmacJwsKey : JwsKey
{
    private readonly byte[] _key;

    /// <summary>
    /// One reusable keyed HMAC context per HS256/384/512 (see
    /// <see cref="HmacContexts"/>): the one-shot HMACSHA256.HashData fetches
    /// the MAC and digest from OpenSSL's providers on every call, which cost
    /// more than the MAC.
    /// </summary>
    private readonly HmacContexts _macs;

    public HmacJwsKey(byte[]? kid, JwsAlgorithm? pinned, byte[] key)
        : base(kid, KeyFamily.Oct, pinned)
    {
        _key = key;
        _macs = new HmacContexts(key);
    }

    /// <summary>An HSxxx never uses a key shorter than its digest (RFC 7518 section 3.2).</summary>
    public override bool CanVerify(JwsAlgorithm alg) =>
        base.CanVerify(alg) && _key.Length >= JwsAlgorithms.HashLength(alg);

    internal override bool Verify(JwsAlgorithm alg, ReadOnlySpan<byte> signingInput,
        ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature)
    {
        if (alg is not (JwsAlgorithm.HS256 or JwsAlgorithm.HS384 or JwsAlgorithm.HS512))
        {
            return false;
        }
        int length = JwsAlgorithms.HashLength(alg);
        Span<byte> mac = stackalloc byte[64];
        bool done = _macs.TryCompute(length, signingInput, mac);
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
            _macs.Dispose();
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
