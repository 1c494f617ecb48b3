using System;
using System.Text;
using NginxOAuth.Core.Cache;
using NUnit.Framework;

namespace NginxOAuth.Core.Tests;

/// <summary>
/// The second-level cache's entries: sealed with AES-256-GCM under a key
/// derived from the configured secret and bound to their Redis key; only
/// the same secret and key open them, anything else is a miss.
/// </summary>
public sealed class SealedEntryTests
{
    private static readonly byte[] Secret = Encoding.ASCII.GetBytes("fleet-secret-0123456789abcdef");
    private static readonly byte[] Key = Encoding.ASCII.GetBytes("fleet:nox:ic:1:00ff");
    private static readonly byte[] Payload = Encoding.ASCII.GetBytes("{\"active\":true,\"sub\":\"alice\"}");

    private static byte[] Sealed(byte[]? secret = null, byte[]? key = null, byte[]? payload = null, long expires = 1_900_000_000,
        int aux = 7)
    {
        payload ??= Payload;
        byte[] output = new byte[SealedEntry.SealedLength(payload.Length)];
        int n = SealedEntry.Seal(secret ?? Secret, key ?? Key, expires, aux, payload, output);
        Assert.That(n, Is.EqualTo(output.Length));
        return output;
    }

    private static SealedEntryError Open(byte[] entry, out byte[] payload, out long expires, out int aux,
        byte[]? secret = null, byte[]? key = null)
    {
        byte[] output = new byte[Math.Max(0, entry.Length - SealedEntry.Overhead)];
        SealedEntryError e = SealedEntry.Open(secret ?? Secret, key ?? Key, entry, output, out int len, out expires, out aux);
        payload = output.AsSpan(0, e == SealedEntryError.None ? len : 0).ToArray();
        return e;
    }

    [Test]
    public void An_entry_opens_with_its_secret_and_key()
    {
        byte[] entry = Sealed();
        Assert.That(Open(entry, out byte[] payload, out long expires, out int aux), Is.EqualTo(SealedEntryError.None));
        Assert.That(payload, Is.EqualTo(Payload));
        Assert.That(expires, Is.EqualTo(1_900_000_000));
        Assert.That(aux, Is.EqualTo(7));
    }

    [Test]
    public void An_empty_payload_and_negative_aux_round_trip()
    {
        byte[] entry = Sealed(payload: [], aux: -3, expires: 5);
        Assert.That(Open(entry, out byte[] payload, out long expires, out int aux), Is.EqualTo(SealedEntryError.None));
        Assert.That(payload, Is.Empty);
        Assert.That((expires, aux), Is.EqualTo((5L, -3)));
    }

    [Test]
    public void The_sealed_bytes_show_no_payload_and_differ_each_time()
    {
        byte[] a = Sealed();
        byte[] b = Sealed();
        string text = Encoding.Latin1.GetString(a);
        Assert.That(text, Does.Not.Contain("alice").And.Not.Contain("active"));
        Assert.That(a, Is.Not.EqualTo(b), "a random nonce per entry");
        Assert.That(a[0], Is.EqualTo(SealedEntry.Version));
    }

    [Test]
    public void Another_secret_is_a_miss() =>
        Assert.That(Open(Sealed(), out _, out _, out _, secret: Encoding.ASCII.GetBytes("another-secret-0123456789")),
            Is.EqualTo(SealedEntryError.NotAuthentic));

    [Test]
    public void An_entry_copied_to_another_key_is_a_miss() =>
        Assert.That(Open(Sealed(), out _, out _, out _, key: Encoding.ASCII.GetBytes("fleet:nox:ic:1:00fe")),
            Is.EqualTo(SealedEntryError.NotAuthentic));

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(13)]
    [TestCase(-1)]
    public void A_changed_byte_is_a_miss(int index)
    {
        byte[] entry = Sealed();
        int i = index < 0 ? entry.Length - 1 : index;
        entry[i] ^= 0x01;
        Assert.That(Open(entry, out _, out _, out _), Is.EqualTo(SealedEntryError.NotAuthentic));
    }

    [TestCase("")]
    [TestCase("hello")]
    [TestCase("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public void Foreign_bytes_are_a_miss(string value) =>
        Assert.That(Open(Encoding.ASCII.GetBytes(value), out _, out _, out _), Is.EqualTo(SealedEntryError.NotAuthentic));

    [Test]
    public void A_truncated_entry_is_a_miss()
    {
        byte[] entry = Sealed();
        Assert.That(Open(entry.AsSpan(0, entry.Length - 1).ToArray(), out _, out _, out _),
            Is.EqualTo(SealedEntryError.NotAuthentic));
    }

    [Test]
    public void A_short_secret_is_refused()
    {
        byte[] output = new byte[SealedEntry.SealedLength(Payload.Length)];
        Assert.That(SealedEntry.Seal(new byte[15], Key, 1, 0, Payload, output), Is.EqualTo(-1));
    }

    [Test]
    public void A_small_output_buffer_is_reported()
    {
        byte[] entry = Sealed();
        Assert.That(SealedEntry.Seal(Secret, Key, 1, 0, Payload, new byte[10]), Is.EqualTo(-1));
        Assert.That(SealedEntry.Open(Secret, Key, entry, new byte[3], out int len, out _, out _),
            Is.EqualTo(SealedEntryError.BufferTooSmall));
        Assert.That(len, Is.EqualTo(Payload.Length));
    }

    [Test]
    public void Switching_secrets_back_and_forth_keeps_each_working()
    {
        byte[] other = Encoding.ASCII.GetBytes("second-secret-0123456789abcdef");
        byte[] a = Sealed();
        byte[] b = Sealed(secret: other);
        Assert.That(Open(a, out _, out _, out _), Is.EqualTo(SealedEntryError.None));
        Assert.That(Open(b, out _, out _, out _, secret: other), Is.EqualTo(SealedEntryError.None));
        Assert.That(Open(a, out _, out _, out _), Is.EqualTo(SealedEntryError.None));
        Assert.That(Open(b, out _, out _, out _), Is.EqualTo(SealedEntryError.NotAuthentic));
    }
}
