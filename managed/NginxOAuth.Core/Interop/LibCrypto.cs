using System;
using System.Runtime.InteropServices;

namespace NginxOAuth.Core.Interop;

/// <summary>
/// The few OpenSSL 3 calls .NET lacks: EdDSA (Ed25519, Ed448) verification.
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
