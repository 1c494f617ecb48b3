using System;
using System.Collections.Generic;
using System.Threading;

namespace NginxOAuth.Core.Keys;

/// <summary>Key document formats (NOX_KEYS_*).</summary>
public enum KeySetFormat
{
    /// <summary>RFC 7517 JWK Set: {"keys":[...]}.</summary>
    Jwks = 0,
    /// <summary>{"kid":"-----BEGIN PUBLIC KEY-----\n..."}: PEM public keys by kid.</summary>
    KeyVal = 1,
}

/// <summary>
/// A key of a document that was not loaded: its position, its kid (null:
/// none), why, and whether it was marked for encryption ("use":"enc", a JWE
/// "alg", a keyval private key).
/// </summary>
public sealed record SkippedKey(int Index, byte[]? Kid, ConfigError Reason, bool ForEncryption = false);

/// <summary>Loaded keys. Shared by policies and requests; never owned by a policy.</summary>
public sealed class KeySet : IDisposable
{
    private readonly JwsKey[] _keys;
    private readonly JweKey[] _decryptionKeys;
    private int _disposed;

    internal KeySet(JwsKey[] keys, JweKey[]? decryptionKeys = null, SkippedKey[]? skipped = null)
    {
        _keys = keys;
        _decryptionKeys = decryptionKeys ?? Array.Empty<JweKey>();
        Skipped = skipped ?? Array.Empty<SkippedKey>();
    }

    /// <summary>
    /// Keys of the document that will never verify (weak, unknown type or
    /// curve, malformed, public encryption keys), in document order:
    /// reported at load, and named when a token needed one of them. A key
    /// marked for encryption that loaded as a decryption key is not listed.
    /// </summary>
    public IReadOnlyList<SkippedKey> Skipped { get; }

    /// <summary>The keys; empty once the set is disposed (a freed set verifies nothing).</summary>
    public ReadOnlySpan<JwsKey> Keys => Volatile.Read(ref _disposed) == 0 ? _keys : ReadOnlySpan<JwsKey>.Empty;

    /// <summary>The JWE decryption keys; empty once the set is disposed.</summary>
    public ReadOnlySpan<JweKey> DecryptionKeys =>
        Volatile.Read(ref _disposed) == 0 ? _decryptionKeys : ReadOnlySpan<JweKey>.Empty;

    public int Count => Keys.Length;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            foreach (JwsKey key in _keys)
            {
                key.Dispose();
            }
            foreach (JweKey key in _decryptionKeys)
            {
                key.Dispose();
            }
        }
    }
}

/// <summary>The outcome of loading a key set; <see cref="Detail"/> is the offending key's index or -1.</summary>
public readonly struct KeySetResult
{
    private KeySetResult(KeySet? keySet, ConfigError error, int detail)
    {
        KeySet = keySet;
        Error = error;
        Detail = detail;
    }

    public KeySet? KeySet { get; }

    public ConfigError Error { get; }

    public int Detail { get; }

    public static KeySetResult Ok(KeySet keySet) => new(keySet, ConfigError.None, -1);

    public static KeySetResult Fail(ConfigError error, int detail = -1) => new(null, error, detail);
}
