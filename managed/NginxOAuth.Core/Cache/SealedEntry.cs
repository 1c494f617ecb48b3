using System;
using System.Buffers.Binary;
using System.Security.Cryptography;

namespace NginxOAuth.Core.Cache;

/// <summary>The outcome of <see cref="SealedEntry.Open"/>.</summary>
public enum SealedEntryError
{
    None = 0,

    /// <summary>
    /// Not an entry of this format, or it does not authenticate under this
    /// key and associated data (another key, another configuration
    /// identity or Redis key, tampered bytes): a cache miss.
    /// </summary>
    NotAuthentic,

    /// <summary>The output buffer is smaller than the payload.</summary>
    BufferTooSmall,
}

/// <summary>
/// A cache entry as the second-level cache (Redis) stores it: AES-256-GCM
/// over the absolute expiry, the entry's auxiliary value and its payload.
/// Layout: version (1 byte, 1) | nonce (12) | ciphertext | tag (16); the
/// plaintext is expires (int64 big-endian, Unix seconds) | aux (int32
/// big-endian) | payload. The key is HKDF-SHA256 of the configured secret;
/// the associated data (the Redis key, which names the prefix, the
/// configuration identity and the digest) binds an entry to where it was
/// written, so an entry copied to another key, or written with another
/// secret, does not open. The nonce is random per entry.
/// </summary>
public static class SealedEntry
{
    public const byte Version = 1;
    public const int NonceSize = 12;
    public const int TagSize = 16;
    public const int HeaderSize = 8 + 4;
    public const int Overhead = 1 + NonceSize + TagSize + HeaderSize;
    public const int MinSecret = 16;

    private static readonly byte[] Info = "NginxOAuth second-level cache v1"u8.ToArray();

    // one worker is one thread: the last secret's cipher is reused (creating
    // an OpenSSL cipher context per entry costs more than the entry)
    [ThreadStatic] private static byte[]? _lastSecret;
    [ThreadStatic] private static AesGcm? _lastCipher;

    /// <summary>The size of the sealed form of a payload of this length.</summary>
    public static int SealedLength(int payloadLength) => Overhead + payloadLength;

    /// <summary>
    /// Seals into output (at least <see cref="SealedLength"/> bytes);
    /// returns the bytes written, or -1 when output is too small or the
    /// secret is shorter than <see cref="MinSecret"/>.
    /// </summary>
    public static int Seal(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> associatedData, long expires, int aux,
        ReadOnlySpan<byte> payload, Span<byte> output)
    {
        int total = SealedLength(payload.Length);
        if (output.Length < total || secret.Length < MinSecret)
        {
            return -1;
        }

        byte[] plain = new byte[HeaderSize + payload.Length];
        BinaryPrimitives.WriteInt64BigEndian(plain, expires);
        BinaryPrimitives.WriteInt32BigEndian(plain.AsSpan(8), aux);
        payload.CopyTo(plain.AsSpan(HeaderSize));

        output[0] = Version;
        Span<byte> nonce = output.Slice(1, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        Span<byte> cipher = output.Slice(1 + NonceSize, plain.Length);
        Span<byte> tag = output.Slice(1 + NonceSize + plain.Length, TagSize);

        Cipher(secret).Encrypt(nonce, plain, cipher, tag, associatedData);
        CryptographicOperations.ZeroMemory(plain);
        return total;
    }

    /// <summary>
    /// Opens a sealed entry: the payload into output (payloadLength bytes),
    /// with its expiry and aux. Anything that does not authenticate is
    /// <see cref="SealedEntryError.NotAuthentic"/>, never an exception.
    /// </summary>
    public static SealedEntryError Open(ReadOnlySpan<byte> secret, ReadOnlySpan<byte> associatedData,
        ReadOnlySpan<byte> sealedEntry, Span<byte> output, out int payloadLength, out long expires, out int aux)
    {
        payloadLength = 0;
        expires = 0;
        aux = 0;

        if (secret.Length < MinSecret || sealedEntry.Length < Overhead || sealedEntry[0] != Version)
        {
            return SealedEntryError.NotAuthentic;
        }

        int plainLength = sealedEntry.Length - 1 - NonceSize - TagSize;
        if (output.Length < plainLength - HeaderSize)
        {
            payloadLength = plainLength - HeaderSize;
            return SealedEntryError.BufferTooSmall;
        }

        byte[] plain = new byte[plainLength];
        try
        {
            Cipher(secret).Decrypt(sealedEntry.Slice(1, NonceSize), sealedEntry.Slice(1 + NonceSize, plainLength),
                sealedEntry.Slice(1 + NonceSize + plainLength, TagSize), plain, associatedData);
        }
        catch (AuthenticationTagMismatchException)
        {
            return SealedEntryError.NotAuthentic;
        }

        expires = BinaryPrimitives.ReadInt64BigEndian(plain);
        aux = BinaryPrimitives.ReadInt32BigEndian(plain.AsSpan(8));
        payloadLength = plainLength - HeaderSize;
        plain.AsSpan(HeaderSize).CopyTo(output);
        CryptographicOperations.ZeroMemory(plain);
        return SealedEntryError.None;
    }

    private static AesGcm Cipher(ReadOnlySpan<byte> secret)
    {
        if (_lastCipher is not null && _lastSecret is not null && secret.SequenceEqual(_lastSecret))
        {
            return _lastCipher;
        }

        Span<byte> key = stackalloc byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, key, ReadOnlySpan<byte>.Empty, Info);
        var cipher = new AesGcm(key, TagSize);
        CryptographicOperations.ZeroMemory(key);

        _lastCipher?.Dispose();
        _lastCipher = cipher;
        _lastSecret = secret.ToArray();
        return cipher;
    }
}
