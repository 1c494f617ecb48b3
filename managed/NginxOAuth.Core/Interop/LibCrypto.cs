using System;
using System.Runtime.InteropServices;
using System.Threading;

namespace NginxOAuth.Core.Interop;

/// <summary>
/// The OpenSSL 3 calls the verifier makes itself: EdDSA (Ed25519, Ed448),
/// which .NET lacks; RSA and ECDSA verification with contexts kept per key
/// (see <see cref="VerifyContexts"/>); and digests fetched once (see
/// <see cref="Digests"/>). Source-generated, blittable imports, so they work under NativeAOT. The
/// library is the same libcrypto.so.3 that System.Security.Cryptography loads.
/// </summary>
internal static unsafe partial class LibCrypto
{
    private const string Library = "libcrypto.so.3";

    internal const int EvpPkeyEd25519 = 1087; // NID_ED25519
    internal const int EvpPkeyEd448 = 1088;   // NID_ED448

    [LibraryImport(Library)]
    internal static partial nint EVP_PKEY_new_raw_public_key(int type, nint engine, byte* key, nuint keyLength);

    [LibraryImport(Library)]
    internal static partial void EVP_PKEY_free(nint pkey);

    [LibraryImport(Library)]
    internal static partial nint EVP_PKEY_new_raw_private_key(int type, nint engine, byte* key, nuint keyLength);

    [LibraryImport(Library)]
    internal static partial int EVP_PKEY_get_raw_public_key(nint pkey, byte* key, nuint* keyLength);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestSignInit(nint ctx, nint pctx, nint type, nint engine, nint pkey);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestSign(nint ctx, byte* signature, nuint* signatureLength,
        byte* data, nuint dataLength);

    [LibraryImport(Library)]
    internal static partial nint EVP_MD_CTX_new();

    [LibraryImport(Library)]
    internal static partial void EVP_MD_CTX_free(nint ctx);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestVerifyInit(nint ctx, nint pctx, nint type, nint engine, nint pkey);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestVerify(nint ctx, byte* signature, nuint signatureLength,
        byte* data, nuint dataLength);

    [LibraryImport(Library)]
    internal static partial void ERR_clear_error();

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint EVP_MD_fetch(nint libraryContext, string algorithm, string? properties);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestInit_ex(nint ctx, nint type, nint engine);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestUpdate(nint ctx, byte* data, nuint count);

    [LibraryImport(Library)]
    internal static partial int EVP_DigestFinal_ex(nint ctx, byte* digest, uint* size);

    [LibraryImport(Library)]
    internal static partial nint d2i_PUBKEY(nint* key, byte** data, nint length);

    [LibraryImport(Library)]
    internal static partial nint EVP_PKEY_CTX_new_from_pkey(nint libraryContext, nint pkey, nint properties);

    [LibraryImport(Library)]
    internal static partial void EVP_PKEY_CTX_free(nint ctx);

    [LibraryImport(Library)]
    internal static partial int EVP_PKEY_verify_init(nint ctx);

    [LibraryImport(Library)]
    internal static partial int EVP_PKEY_verify(nint ctx, byte* signature, nuint signatureLength,
        byte* digest, nuint digestLength);

    [LibraryImport(Library)]
    internal static partial int EVP_PKEY_CTX_set_signature_md(nint ctx, nint md);

    [LibraryImport(Library)]
    internal static partial int EVP_PKEY_CTX_set_rsa_padding(nint ctx, int padding);

    [LibraryImport(Library)]
    internal static partial int EVP_PKEY_CTX_set_rsa_pss_saltlen(nint ctx, int saltLength);

    [LibraryImport(Library)]
    internal static partial int EVP_PKEY_CTX_set_rsa_mgf1_md(nint ctx, nint md);

    [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint EVP_MAC_fetch(nint libraryContext, string algorithm, string? properties);

    [LibraryImport(Library)]
    internal static partial nint EVP_MAC_CTX_new(nint mac);

    [LibraryImport(Library)]
    internal static partial void EVP_MAC_CTX_free(nint ctx);

    [LibraryImport(Library)]
    internal static partial int EVP_MAC_init(nint ctx, byte* key, nuint keyLength, OsslParam* parameters);

    [LibraryImport(Library)]
    internal static partial int EVP_MAC_update(nint ctx, byte* data, nuint dataLength);

    [LibraryImport(Library)]
    internal static partial int EVP_MAC_final(nint ctx, byte* output, nuint* outputLength, nuint outputSize);

    /// <summary>OSSL_PARAM (openssl/core.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct OsslParam
    {
        public byte* Key;
        public uint DataType;
        public void* Data;
        public nuint DataSize;
        public nuint ReturnSize;
    }

    internal const uint OsslParamUtf8String = 4;            // OSSL_PARAM_UTF8_STRING
    internal static readonly nuint OsslParamUnmodified = unchecked((nuint)(-1)); // OSSL_PARAM_UNMODIFIED

    internal const int RsaPkcs1Padding = 1;      // RSA_PKCS1_PADDING
    internal const int RsaPkcs1PssPadding = 6;   // RSA_PKCS1_PSS_PADDING
    internal const int RsaPssSaltLenDigest = -1; // RSA_PSS_SALTLEN_DIGEST
}

/// <summary>
/// SHA-256/384/512 with digests fetched once per process (see
/// <see cref="Sha256"/> for why) and one reusable context per thread.
/// </summary>
internal static unsafe class Digests
{
    private static readonly nint[] _md =
    [
        LibCrypto.EVP_MD_fetch(IntPtr.Zero, "SHA2-256", null),
        LibCrypto.EVP_MD_fetch(IntPtr.Zero, "SHA2-384", null),
        LibCrypto.EVP_MD_fetch(IntPtr.Zero, "SHA2-512", null),
    ];

    [ThreadStatic]
    private static nint _ctx;

    /// <summary>The fetched EVP_MD for a digest length of 32, 48 or 64 bytes; 0 when unavailable.</summary>
    public static nint Md(int length) => length switch
    {
        32 => _md[0],
        48 => _md[1],
        64 => _md[2],
        _ => IntPtr.Zero,
    };

    /// <summary>Hashes <paramref name="data"/> with the digest of <paramref name="length"/> bytes; false when OpenSSL could not.</summary>
    public static bool TryHash(int length, ReadOnlySpan<byte> data, Span<byte> output)
    {
        nint md = Md(length);
        if (md == IntPtr.Zero || output.Length < length)
        {
            return false;
        }

        if (_ctx == IntPtr.Zero)
        {
            _ctx = LibCrypto.EVP_MD_CTX_new();
            if (_ctx == IntPtr.Zero)
            {
                return false;
            }
        }

        uint written = 0;
        fixed (byte* d = data)
        fixed (byte* o = output)
        {
            if (LibCrypto.EVP_DigestInit_ex(_ctx, md, IntPtr.Zero) != 1
                || LibCrypto.EVP_DigestUpdate(_ctx, d, (nuint)data.Length) != 1
                || LibCrypto.EVP_DigestFinal_ex(_ctx, o, &written) != 1)
            {
                LibCrypto.ERR_clear_error();
                return false;
            }
        }

        return written == length;
    }
}

/// <summary>
/// SHA-256 for cache keys, measured hot: every cache lookup hashes its key.
/// System.Security.Cryptography passes OpenSSL 3 a legacy EVP_MD, which
/// makes every EVP_DigestInit_ex fetch the algorithm again by name (about a
/// microsecond of lookups per hash in a profile of a cache hit); this goes
/// through <see cref="Digests"/>, fetched once.
/// </summary>
internal static class Sha256
{
    /// <summary>False when OpenSSL could not hash (the caller falls back).</summary>
    public static bool TryHash(ReadOnlySpan<byte> data, Span<byte> output) => Digests.TryHash(32, data, output);
}

/// <summary>
/// Reusable EVP_PKEY_CTX objects for one public key, one slot per setting
/// (e.g. per RS256/PS256/...): initialised for verification once, then used
/// for any number of EVP_PKEY_verify calls. A caller takes a context out of
/// its slot and puts it back, so concurrent callers never share one (a
/// second concurrent caller builds its own). .NET's RSA/ECDsa.VerifyHash
/// set a fresh context up on every call, from a legacy digest that OpenSSL
/// 3 looks up again by name each time.
/// </summary>
internal sealed unsafe class VerifyContexts : IDisposable
{
    private readonly EvpPKeyHandle _pkey;
    private readonly nint[] _slots;
    private readonly Func<nint, int, bool> _setup;

    /// <param name="setup">Sets a fresh, verify-initialised context up for a slot; false on failure.</param>
    public VerifyContexts(EvpPKeyHandle pkey, int slots, Func<nint, int, bool> setup)
    {
        _pkey = pkey;
        _slots = new nint[slots];
        _setup = setup;
    }

    /// <summary>Builds an EVP_PKEY from a DER SubjectPublicKeyInfo; null when OpenSSL refuses it.</summary>
    public static EvpPKeyHandle? FromSubjectPublicKeyInfo(ReadOnlySpan<byte> der)
    {
        nint pkey;
        fixed (byte* p = der)
        {
            byte* cursor = p;
            pkey = LibCrypto.d2i_PUBKEY(null, &cursor, der.Length);
        }
        if (pkey == IntPtr.Zero)
        {
            LibCrypto.ERR_clear_error();
            return null;
        }
        return new EvpPKeyHandle(pkey);
    }

    /// <summary>Verifies a signature over a digest with the context of <paramref name="slot"/>.</summary>
    public bool Verify(int slot, ReadOnlySpan<byte> digest, ReadOnlySpan<byte> signature)
    {
        nint ctx = Interlocked.Exchange(ref _slots[slot], IntPtr.Zero);
        if (ctx == IntPtr.Zero && (ctx = Create(slot)) == IntPtr.Zero)
        {
            return false;
        }

        int rc;
        fixed (byte* s = signature)
        fixed (byte* d = digest)
        {
            rc = LibCrypto.EVP_PKEY_verify(ctx, s, (nuint)signature.Length, d, (nuint)digest.Length);
        }
        if (rc != 1)
        {
            // Leave no error on this thread's queue for .NET's own OpenSSL calls.
            LibCrypto.ERR_clear_error();
        }

        if (Interlocked.CompareExchange(ref _slots[slot], ctx, IntPtr.Zero) != IntPtr.Zero)
        {
            LibCrypto.EVP_PKEY_CTX_free(ctx); // another caller put one back meanwhile
        }
        return rc == 1;
    }

    private nint Create(int slot)
    {
        bool added = false;
        nint ctx = IntPtr.Zero;
        try
        {
            _pkey.DangerousAddRef(ref added);
            ctx = LibCrypto.EVP_PKEY_CTX_new_from_pkey(IntPtr.Zero, _pkey.DangerousGetHandle(), IntPtr.Zero);
            if (ctx == IntPtr.Zero || LibCrypto.EVP_PKEY_verify_init(ctx) != 1 || !_setup(ctx, slot))
            {
                LibCrypto.ERR_clear_error();
                if (ctx != IntPtr.Zero)
                {
                    LibCrypto.EVP_PKEY_CTX_free(ctx);
                }
                return IntPtr.Zero;
            }
            return ctx;
        }
        finally
        {
            if (added)
            {
                _pkey.DangerousRelease();
            }
        }
    }

    public void Dispose()
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            nint ctx = Interlocked.Exchange(ref _slots[i], IntPtr.Zero);
            if (ctx != IntPtr.Zero)
            {
                LibCrypto.EVP_PKEY_CTX_free(ctx);
            }
        }
        _pkey.Dispose();
    }
}

/// <summary>An owned EVP_PKEY.</summary>
internal sealed class EvpPKeyHandle : SafeHandle
{
    public EvpPKeyHandle(nint pkey)
        : base(IntPtr.Zero, ownsHandle: true)
    {
        SetHandle(pkey);
    }

    public override bool IsInvalid => handle == IntPtr.Zero;

    protected override bool ReleaseHandle()
    {
        LibCrypto.EVP_PKEY_free(handle);
        return true;
    }
}

/// <summary>
/// HMAC-SHA-256/384/512 for one key: one keyed EVP_MAC_CTX per digest,
/// re-initialised (same key) for each MAC and taken out of its slot while
/// in use, so concurrent callers never share one. IncrementalHash wraps the
/// same OpenSSL calls in a lock, a SafeHandle reference and an error-queue
/// clear per call, which together cost as much as the MAC of a JWT.
/// </summary>
internal sealed unsafe class HmacContexts : IDisposable
{
    private static readonly nint Hmac = LibCrypto.EVP_MAC_fetch(IntPtr.Zero, "HMAC", null);

    private readonly byte[] _key;
    private readonly nint[] _slots = new nint[3];

    /// <param name="key">The secret; the caller keeps it and clears it.</param>
    public HmacContexts(byte[] key)
    {
        _key = key;
    }

    /// <summary>
    /// Writes the MAC of <paramref name="data"/> with the digest of
    /// <paramref name="length"/> (32, 48 or 64) bytes; false when OpenSSL could not.
    /// </summary>
    public bool TryCompute(int length, ReadOnlySpan<byte> data, Span<byte> mac)
    {
        int slot = length switch
        {
            32 => 0,
            48 => 1,
            64 => 2,
            _ => -1,
        };
        if (slot < 0 || mac.Length < length)
        {
            return false;
        }

        nint ctx = Interlocked.Exchange(ref _slots[slot], IntPtr.Zero);
        if (ctx == IntPtr.Zero && (ctx = Create(slot)) == IntPtr.Zero)
        {
            return false;
        }

        nuint written = 0;
        bool ok;
        fixed (byte* d = data)
        fixed (byte* m = mac)
        {
            ok = LibCrypto.EVP_MAC_init(ctx, null, 0, null) == 1
                && LibCrypto.EVP_MAC_update(ctx, d, (nuint)data.Length) == 1
                && LibCrypto.EVP_MAC_final(ctx, m, &written, (nuint)mac.Length) == 1
                && written == (nuint)length;
        }
        if (!ok)
        {
            LibCrypto.ERR_clear_error();
        }

        if (Interlocked.CompareExchange(ref _slots[slot], ctx, IntPtr.Zero) != IntPtr.Zero)
        {
            LibCrypto.EVP_MAC_CTX_free(ctx); // another caller put one back meanwhile
        }
        return ok;
    }

    private nint Create(int slot)
    {
        if (Hmac == IntPtr.Zero)
        {
            return IntPtr.Zero;
        }
        ReadOnlySpan<byte> digest = slot switch
        {
            0 => "SHA2-256\0"u8,
            1 => "SHA2-384\0"u8,
            _ => "SHA2-512\0"u8,
        };
        nint ctx = LibCrypto.EVP_MAC_CTX_new(Hmac);
        if (ctx == IntPtr.Zero)
        {
            return IntPtr.Zero;
        }

        int rc;
        fixed (byte* name = "digest\0"u8)
        fixed (byte* value = digest)
        fixed (byte* key = _key)
        {
            LibCrypto.OsslParam* parameters = stackalloc LibCrypto.OsslParam[2];
            parameters[0] = new LibCrypto.OsslParam
            {
                Key = name,
                DataType = LibCrypto.OsslParamUtf8String,
                Data = value,
                DataSize = (nuint)(digest.Length - 1),
                ReturnSize = LibCrypto.OsslParamUnmodified,
            };
            parameters[1] = default; // the end marker: a NULL key
            rc = LibCrypto.EVP_MAC_init(ctx, key, (nuint)_key.Length, parameters);
        }
        if (rc != 1)
        {
            LibCrypto.ERR_clear_error();
            LibCrypto.EVP_MAC_CTX_free(ctx);
            return IntPtr.Zero;
        }
        return ctx;
    }

    public void Dispose()
    {
        for (int i = 0; i < _slots.Length; i++)
        {
            nint ctx = Interlocked.Exchange(ref _slots[i], IntPtr.Zero);
            if (ctx != IntPtr.Zero)
            {
                LibCrypto.EVP_MAC_CTX_free(ctx);
            }
        }
    }
}
