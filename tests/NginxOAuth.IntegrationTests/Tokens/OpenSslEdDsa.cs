using System;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace NginxOAuth.IntegrationTests.Tokens;

/// <summary>
/// Ed25519 / Ed448 keys through OpenSSL 3 (libcrypto.so.3): .NET has no
/// EdDSA.  Only what the tests need: generate, raw public key, sign.
/// </summary>
internal sealed partial class OpenSslEdDsa : IDisposable
{
    public const int Ed25519 = 1087; // EVP_PKEY_ED25519 (NID_ED25519)
    public const int Ed448 = 1088;   // EVP_PKEY_ED448 (NID_ED448)

    private const string LibCrypto = "libcrypto.so.3";

    private IntPtr _pkey;

    private OpenSslEdDsa(int type, IntPtr pkey)
    {
        Type = type;
        _pkey = pkey;
    }

    public int Type { get; }

    public static OpenSslEdDsa Generate(int type)
    {
        IntPtr ctx = EVP_PKEY_CTX_new_id(type, IntPtr.Zero);
        if (ctx == IntPtr.Zero)
        {
            throw new CryptographicException($"EVP_PKEY_CTX_new_id({type}) failed");
        }

        try
        {
            IntPtr pkey = IntPtr.Zero;
            if (EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, ref pkey) != 1 || pkey == IntPtr.Zero)
            {
                throw new CryptographicException("EdDSA key generation failed");
            }

            return new OpenSslEdDsa(type, pkey);
        }
        finally
        {
            EVP_PKEY_CTX_free(ctx);
        }
    }

    public byte[] PublicKey()
    {
        nuint len = 0;
        if (EVP_PKEY_get_raw_public_key(_pkey, null, ref len) != 1)
        {
            throw new CryptographicException("EVP_PKEY_get_raw_public_key failed");
        }

        byte[] key = new byte[(int)len];
        if (EVP_PKEY_get_raw_public_key(_pkey, key, ref len) != 1)
        {
            throw new CryptographicException("EVP_PKEY_get_raw_public_key failed");
        }

        return key;
    }

    /// <summary>SubjectPublicKeyInfo (RFC 8410) as DER.</summary>
    public byte[] SubjectPublicKeyInfo()
    {
        byte[] raw = PublicKey();
        // SEQUENCE { SEQUENCE { OID 1.3.101.112|113 } BIT STRING { 00 raw } }
        byte oid = Type == Ed25519 ? (byte)0x70 : (byte)0x71;
        byte[] prefix = [0x30, (byte)(raw.Length + 10), 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, oid, 0x03, (byte)(raw.Length + 1), 0x00];
        return [.. prefix, .. raw];
    }

    public byte[] Sign(ReadOnlySpan<byte> data)
    {
        IntPtr md = EVP_MD_CTX_new();
        if (md == IntPtr.Zero)
        {
            throw new CryptographicException("EVP_MD_CTX_new failed");
        }

        try
        {
            if (EVP_DigestSignInit(md, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero, _pkey) != 1)
            {
                throw new CryptographicException("EVP_DigestSignInit failed");
            }

            byte[] input = data.ToArray();
            nuint len = 0;
            if (EVP_DigestSign(md, null, ref len, input, (nuint)input.Length) != 1)
            {
                throw new CryptographicException("EVP_DigestSign (length) failed");
            }

            byte[] sig = new byte[(int)len];
            if (EVP_DigestSign(md, sig, ref len, input, (nuint)input.Length) != 1)
            {
                throw new CryptographicException("EVP_DigestSign failed");
            }

            return sig.AsSpan(0, (int)len).ToArray();
        }
        finally
        {
            EVP_MD_CTX_free(md);
        }
    }

    public void Dispose()
    {
        if (_pkey != IntPtr.Zero)
        {
            EVP_PKEY_free(_pkey);
            _pkey = IntPtr.Zero;
        }
    }

    [LibraryImport(LibCrypto)]
    private static partial IntPtr EVP_PKEY_CTX_new_id(int id, IntPtr engine);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_PKEY_keygen_init(IntPtr ctx);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_PKEY_keygen(IntPtr ctx, ref IntPtr pkey);

    [LibraryImport(LibCrypto)]
    private static partial void EVP_PKEY_CTX_free(IntPtr ctx);

    [LibraryImport(LibCrypto)]
    private static partial void EVP_PKEY_free(IntPtr pkey);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_PKEY_get_raw_public_key(IntPtr pkey, byte[]? pub, ref nuint len);

    [LibraryImport(LibCrypto)]
    private static partial IntPtr EVP_MD_CTX_new();

    [LibraryImport(LibCrypto)]
    private static partial void EVP_MD_CTX_free(IntPtr ctx);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_DigestSignInit(IntPtr ctx, IntPtr pctx, IntPtr type, IntPtr engine, IntPtr pkey);

    [LibraryImport(LibCrypto)]
    private static partial int EVP_DigestSign(IntPtr ctx, byte[]? sig, ref nuint siglen, byte[] tbs, nuint tbslen);
}
