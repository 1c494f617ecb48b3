using System;
using System.Runtime.InteropServices;

namespace NginxOAuth.Core.Interop;

/// <summary>
/// The few OpenSSL 3 calls .NET lacks: EdDSA (Ed25519, Ed448) verification,
/// and SHA-256 with an explicitly fetched digest (see <see cref="Sha256"/>).
/// Source-generated, blittable imports, so they work under NativeAOT. The
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
}

/// <summary>
/// SHA-256 for cache keys, measured hot: every cache lookup hashes its key.
/// System.Security.Cryptography passes OpenSSL 3 a legacy EVP_MD, which
/// makes every EVP_DigestInit_ex fetch the algorithm again by name (about a
/// microsecond of lookups per hash in a profile of a cache hit). Here the
/// digest is fetched once per process and the context reused per thread.
/// </summary>
internal static unsafe class Sha256
{
    private const int Size = 32;

    private static readonly nint _md = LibCrypto.EVP_MD_fetch(IntPtr.Zero, "SHA2-256", null);

    [ThreadStatic]
    private static nint _ctx;

    /// <summary>False when OpenSSL could not hash (the caller falls back).</summary>
    public static bool TryHash(ReadOnlySpan<byte> data, Span<byte> output)
    {
        if (_md == IntPtr.Zero || output.Length < Size)
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
            if (LibCrypto.EVP_DigestInit_ex(_ctx, _md, IntPtr.Zero) != 1
                || LibCrypto.EVP_DigestUpdate(_ctx, d, (nuint)data.Length) != 1
                || LibCrypto.EVP_DigestFinal_ex(_ctx, o, &written) != 1)
            {
                LibCrypto.ERR_clear_error();
                return false;
            }
        }

        return written == Size;
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
