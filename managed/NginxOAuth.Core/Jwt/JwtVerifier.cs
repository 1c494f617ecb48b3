using System;
using System.Buffers;
using System.Buffers.Text;
using System.Text.Json;
using System.Text.Unicode;
using NginxOAuth.Core.Json;
using NginxOAuth.Core.Keys;
using NginxOAuth.Core.Policy;

namespace NginxOAuth.Core.Jwt;

/// <summary>Per-request expected values of <see cref="RuleValueKind.Variable"/> rules, by rule index.</summary>
public interface IRuleValues
{
    /// <summary>False when no value was supplied for rule <paramref name="index"/>.</summary>
    bool TryGet(int index, out ReadOnlySpan<byte> value);
}

/// <summary>No per-request values.</summary>
public readonly struct NoRuleValues : IRuleValues
{
    public bool TryGet(int index, out ReadOnlySpan<byte> value)
    {
        value = default;
        return false;
    }
}

/// <summary>Per-request values held in managed arrays (tests, tools).</summary>
public readonly struct ArrayRuleValues : IRuleValues
{
    private readonly byte[]?[] _values;

    public ArrayRuleValues(byte[]?[] values)
    {
        _values = values;
    }

    public bool TryGet(int index, out ReadOnlySpan<byte> value)
    {
        if ((uint)index < (uint)_values.Length && _values[index] is { } v)
        {
            value = v;
            return true;
        }
        value = default;
        return false;
    }
}

/// <summary>The outcome of <see cref="JwtVerifier.Verify"/>.</summary>
public readonly struct VerifyResult
{
    public VerifyResult(TokenError error, int detail, int headerLength, int payloadLength)
    {
        Error = error;
        Detail = detail;
        HeaderLength = headerLength;
        PayloadLength = payloadLength;
    }

    public TokenError Error { get; }

    /// <summary>The rule index for rule decisions, else -1.</summary>
    public int Detail { get; }

    /// <summary>Decoded header length in the output buffer, -1 when it did not decode.</summary>
    public int HeaderLength { get; }

    /// <summary>Decoded payload length (after the header), -1 when it did not decode.</summary>
    public int PayloadLength { get; }

    public bool IsValid => Error == TokenError.None;
}

/// <summary>
/// Verifies compact JWS tokens against a <see cref="VerificationPolicy"/>.
/// Order (fail closed; the signature before any claim so a forged token
/// learns nothing): size, decode, alg none, crit, signature, exp, nbf, sub
/// revocation, kid revocation, claim rules, header rules.
/// </summary>
public static class JwtVerifier
{
    private static readonly SearchValues<byte> Base64UrlAlphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"u8);

    /// <summary>Longest signature any supported key produces (RSA 16384 bits).</summary>
    private const int MaxSignature = KeyBuilder.MaxRsaBits / 8;

    /// <summary>
    /// Verifies <paramref name="token"/> at Unix time <paramref name="now"/>.
    /// The decoded header and then the payload are written to
    /// <paramref name="output"/> (at least token.Length bytes) as soon as they decode.
    /// </summary>
    public static VerifyResult Verify<TValues>(VerificationPolicy policy, ReadOnlySpan<byte> token, long now,
        ReadOnlySpan<KeySet> extraKeySets, TValues ruleValues, Span<byte> output)
        where TValues : IRuleValues
    {
        if (token.Length > Limits.MaxToken)
        {
            return new VerifyResult(TokenError.TokenTooLarge, -1, -1, -1);
        }
        if (output.Length < token.Length)
        {
            throw new ArgumentException("output must hold at least token.Length bytes", nameof(output));
        }

        var decoded = new DecodedToken();
        try
        {
            TokenError error = decoded.Decode(token, output);
            if (error == TokenError.None)
            {
                error = Check(policy, ref decoded, now, extraKeySets, ruleValues, out int detail);
                return new VerifyResult(error, detail, decoded.HeaderLength, decoded.PayloadLength);
            }
            return new VerifyResult(error, -1, decoded.HeaderLength, decoded.PayloadLength);
        }
        finally
        {
            decoded.Dispose();
        }
    }

    /// <summary>
    /// The signature layer alone: decodes the header, rejects none and crit,
    /// and verifies the signature with <paramref name="keySets"/>. The payload
    /// may be any bytes (RFC 7520's examples sign a text payload).
    /// </summary>
    public static TokenError VerifySignature(ReadOnlySpan<byte> token, ReadOnlySpan<KeySet> keySets)
    {
        if (token.Length > Limits.MaxToken)
        {
            return TokenError.TokenTooLarge;
        }

        var decoded = new DecodedToken();
        try
        {
            TokenError error = decoded.DecodeHeaderOnly(token);
            if (error != TokenError.None)
            {
                return error;
            }
            JsonElement header = decoded.Header!.RootElement;
            error = CheckAlgAndCrit(header);
            return error != TokenError.None
                ? error
                : CheckSignature(token, decoded.SigningInputLength, header, keySets, ReadOnlySpan<KeySet>.Empty);
        }
        finally
        {
            decoded.Dispose();
        }
    }

    private static TokenError Check<TValues>(VerificationPolicy policy, ref DecodedToken decoded, long now,
        ReadOnlySpan<KeySet> extraKeySets, TValues ruleValues, out int detail)
        where TValues : IRuleValues
    {
        detail = -1;
        JsonElement header = decoded.Header!.RootElement;
        JsonElement payload = decoded.Payload!.RootElement;

        TokenError error = CheckAlgAndCrit(header);
        if (error != TokenError.None)
        {
            return error;
        }

        if (policy.ValidateSignature)
        {
            error = CheckSignature(decoded.Token, decoded.SigningInputLength, header, policy.KeySets, extraKeySets);
            if (error != TokenError.None)
            {
                return error;
            }
        }

        return CheckClaims(policy, header, payload, now, ruleValues, out detail);
    }

    /// <summary>
    /// The checks after the signature, on a header and payload that were
    /// already decoded (and verified) earlier: alg none and crit, exp/nbf at
    /// <paramref name="now"/>, revocation lists, claim and header rules. The
    /// verified-token cache runs this on a hit, so a hit and a miss share one
    /// rule engine. The parts come from <see cref="Verify"/>, which rejected
    /// repeated member names; they are parsed again (malformed JSON is
    /// TokenMalformed) but not scanned for duplicates a second time: this
    /// runs on every cache hit.
    /// </summary>
    public static VerifyResult CheckDecoded<TValues>(VerificationPolicy policy, ReadOnlySpan<byte> header,
        ReadOnlySpan<byte> payload, long now, TValues ruleValues)
        where TValues : IRuleValues
    {
        if (header.Length > Limits.MaxHeader || payload.Length > Limits.MaxToken)
        {
            return new VerifyResult(TokenError.TokenTooLarge, -1, -1, -1);
        }
        if (header.IsEmpty || payload.IsEmpty || header[0] != (byte)'{' || payload[0] != (byte)'{')
        {
            return new VerifyResult(TokenError.TokenMalformed, -1, -1, -1);
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(header.Length + payload.Length);
        try
        {
            header.CopyTo(buffer);
            payload.CopyTo(buffer.AsSpan(header.Length));
            using JsonDocument? h = TryParse(buffer.AsMemory(0, header.Length));
            using JsonDocument? p = TryParse(buffer.AsMemory(header.Length, payload.Length));
            if (h is null || p is null
                || h.RootElement.ValueKind != JsonValueKind.Object || p.RootElement.ValueKind != JsonValueKind.Object)
            {
                return new VerifyResult(TokenError.TokenMalformed, -1, -1, -1);
            }
            TokenError error = CheckAlgAndCrit(h.RootElement);
            int detail = -1;
            if (error == TokenError.None)
            {
                error = CheckClaims(policy, h.RootElement, p.RootElement, now, ruleValues, out detail);
            }
            return new VerifyResult(error, detail, header.Length, payload.Length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private static JsonDocument? TryParse(ReadOnlyMemory<byte> json)
    {
        try
        {
            return JsonGuard.Parse(json);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static TokenError CheckClaims<TValues>(VerificationPolicy policy, JsonElement header,
        JsonElement payload, long now, TValues ruleValues, out int detail)
        where TValues : IRuleValues
    {
        detail = -1;
        TokenError error = CheckTimes(policy, payload, now);
        if (error != TokenError.None)
        {
            return error;
        }

        if (policy.RevokedSubs is { } subs)
        {
            if (!payload.TryGetProperty("sub"u8, out JsonElement sub) || sub.ValueKind != JsonValueKind.String
                || subs.Contains(sub.GetString()!))
            {
                return TokenError.SubRevoked;
            }
        }

        if (policy.RevokedKids is { } kids)
        {
            if (!header.TryGetProperty("kid"u8, out JsonElement kid) || kid.ValueKind != JsonValueKind.String
                || kid.ValueEquals(ReadOnlySpan<byte>.Empty) || kids.Contains(kid.GetString()!))
            {
                return TokenError.KidRevoked;
            }
        }

        foreach (RuleTarget target in (ReadOnlySpan<RuleTarget>)[RuleTarget.Claim, RuleTarget.Header])
        {
            JsonElement root = target == RuleTarget.Claim ? payload : header;
            foreach (Rule rule in policy.Rules)
            {
                if (rule.Target != target)
                {
                    continue;
                }
                RuleOutcome outcome = EvaluateRule(rule, root, ruleValues);
                if (outcome != RuleOutcome.Pass)
                {
                    detail = rule.Index;
                    return outcome == RuleOutcome.ValueInvalid ? TokenError.RuleValueInvalid
                        : target == RuleTarget.Claim ? TokenError.ClaimFailed
                        : TokenError.HeaderFailed;
                }
            }
        }

        return TokenError.None;
    }

    private static TokenError CheckAlgAndCrit(JsonElement header)
    {
        if (header.TryGetProperty("alg"u8, out JsonElement alg) && alg.ValueKind == JsonValueKind.String
            && alg.ValueEquals("none"u8))
        {
            return TokenError.AlgNone; // never, whatever the configuration
        }

        // We understand no extension header, so any "crit" is unsupported
        // (RFC 7515 section 4.1.11; an empty list is itself invalid).
        if (header.TryGetProperty("crit"u8, out _))
        {
            return TokenError.CritUnsupported;
        }
        return TokenError.None;
    }

    private static TokenError CheckSignature(ReadOnlySpan<byte> token, int signingInputLength, JsonElement header,
        ReadOnlySpan<KeySet> sets1, ReadOnlySpan<KeySet> sets2)
    {
        if (!header.TryGetProperty("alg"u8, out JsonElement algElement)
            || !JwsAlgorithms.TryParse(algElement, out JwsAlgorithm alg))
        {
            return TokenError.AlgUnsupported;
        }

        bool hasKid = header.TryGetProperty("kid"u8, out JsonElement kid);
        if (hasKid && kid.ValueKind != JsonValueKind.String)
        {
            return TokenError.TokenMalformed;
        }

        int total = 0;
        foreach (KeySet set in sets1)
        {
            total += set.Count;
        }
        foreach (KeySet set in sets2)
        {
            total += set.Count;
        }
        if (total == 0)
        {
            return TokenError.NoKeys;
        }

        ReadOnlySpan<byte> signingInput = token[..signingInputLength];
        ReadOnlySpan<byte> encodedSignature = token[(signingInputLength + 1)..];
        if (encodedSignature.Length > Base64Url.GetEncodedLength(MaxSignature))
        {
            return TokenError.BadSignature; // longer than any key's signature
        }

        Span<byte> signature = stackalloc byte[MaxSignature];
        if (!TryDecode(encodedSignature, signature, out int signatureLength))
        {
            return TokenError.TokenMalformed;
        }
        signature = signature[..signatureLength];

        // RSA and ECDSA verify a digest; HMAC and EdDSA take the signing
        // input itself, so they skip hashing it a second time.
        Span<byte> hash = stackalloc byte[64];
        bool prehash = alg is not (JwsAlgorithm.HS256 or JwsAlgorithm.HS384 or JwsAlgorithm.HS512
            or JwsAlgorithm.EdDSA);
        hash = prehash ? hash[..JwsAlgorithms.ComputeHash(alg, signingInput, hash)] : Span<byte>.Empty;

        // Keys carrying the token's kid first, then keys without a kid; with
        // no kid in the token, every key. Always filtered by alg family and pin.
        bool candidate = false;
        int passes = hasKid ? 2 : 1;
        for (int pass = 0; pass < passes; pass++)
        {
            for (int s = 0; s < sets1.Length + sets2.Length; s++)
            {
                KeySet set = s < sets1.Length ? sets1[s] : sets2[s - sets1.Length];
                foreach (JwsKey key in set.Keys)
                {
                    if (hasKid && (pass == 0 ? !key.HasKid || !kid.ValueEquals(key.Kid) : key.HasKid))
                    {
                        continue;
                    }
                    if (!key.CanVerify(alg))
                    {
                        continue;
                    }
                    candidate = true;
                    if (key.Verify(alg, signingInput, hash, signature))
                    {
                        return TokenError.None;
                    }
                }
            }
        }

        return candidate ? TokenError.BadSignature : TokenError.KeyNotFound;
    }

    private static TokenError CheckTimes(VerificationPolicy policy, JsonElement payload, long now)
    {
        long leeway = policy.Leeway;
        if (policy.ValidateExp)
        {
            if (!payload.TryGetProperty("exp"u8, out JsonElement exp) || !TryGetTime(exp, out decimal expiry))
            {
                return TokenError.ExpMissing;
            }
            if (now >= expiry + leeway)
            {
                return TokenError.Expired;
            }
        }

        if (payload.TryGetProperty("nbf"u8, out JsonElement nbf))
        {
            if (!TryGetTime(nbf, out decimal notBefore))
            {
                return TokenError.TokenMalformed;
            }
            if (now < notBefore - leeway)
            {
                return TokenError.NotYetValid;
            }
        }
        return TokenError.None;
    }

    /// <summary>A NumericDate: integer or decimal seconds.</summary>
    private static bool TryGetTime(JsonElement value, out decimal seconds)
    {
        seconds = 0;
        if (value.ValueKind != JsonValueKind.Number)
        {
            return false;
        }
        if (value.TryGetDecimal(out seconds))
        {
            return true;
        }

        // Beyond decimal's range (e.g. 1e40): clamp, the comparison stays right.
        if (value.TryGetDouble(out double d) && !double.IsNaN(d))
        {
            seconds = d > 0 ? decimal.MaxValue / 2 : decimal.MinValue / 2;
            return true;
        }
        return false;
    }

    private static RuleOutcome EvaluateRule<TValues>(Rule rule, JsonElement root, TValues ruleValues)
        where TValues : IRuleValues
    {
        if (!rule.Path.TryResolve(root, out JsonElement actual))
        {
            return RuleOutcome.Fail; // a missing claim fails every operator, negated ones too
        }

        if (rule.Expected is { } expected)
        {
            return Rule.Evaluate(rule.Operator, actual, expected.RootElement, rule.Adjust)
                ? RuleOutcome.Pass : RuleOutcome.Fail;
        }

        if (!ruleValues.TryGet(rule.Index, out ReadOnlySpan<byte> text) || text.IsEmpty)
        {
            return RuleOutcome.Fail;
        }
        JsonShape shape = JsonGuard.Check(text);
        if (shape is JsonShape.Invalid or JsonShape.DuplicateMember)
        {
            return RuleOutcome.ValueInvalid;
        }

        using JsonDocument value = JsonGuard.Parse(text.ToArray());
        return Rule.Evaluate(rule.Operator, actual, value.RootElement, rule.Adjust)
            ? RuleOutcome.Pass : RuleOutcome.Fail;
    }

    /// <summary>Strict base64url: the URL-safe alphabet only, no padding, no whitespace.</summary>
    internal static bool TryDecode(ReadOnlySpan<byte> encoded, Span<byte> destination, out int written)
    {
        written = 0;
        if (encoded.Length % 4 == 1 || encoded.IndexOfAnyExcept(Base64UrlAlphabet) >= 0)
        {
            return false;
        }
        if (encoded.IsEmpty)
        {
            return true;
        }
        return Base64Url.DecodeFromUtf8(encoded, destination, out _, out written) == OperationStatus.Done;
    }

    /// <summary>The decoded parts of one token; the buffers are pooled.</summary>
    private ref struct DecodedToken
    {
        private byte[]? _buffer;

        public ReadOnlySpan<byte> Token;
        public int SigningInputLength;
        public int HeaderLength;
        public int PayloadLength;
        public JsonDocument? Header;
        public JsonDocument? Payload;

        public TokenError Decode(ReadOnlySpan<byte> token, Span<byte> output)
        {
            HeaderLength = -1;
            PayloadLength = -1;
            TokenError error = Split(token, out int dot1, out int dot2);
            if (error != TokenError.None)
            {
                return error;
            }

            ReadOnlySpan<byte> encodedHeader = token[..dot1];
            ReadOnlySpan<byte> encodedPayload = token[(dot1 + 1)..dot2];
            int headerMax = Base64Url.GetMaxDecodedLength(encodedHeader.Length);
            if (headerMax > Limits.MaxHeader + 2)
            {
                return TokenError.TokenTooLarge;
            }

            int payloadMax = Base64Url.GetMaxDecodedLength(encodedPayload.Length);
            _buffer = ArrayPool<byte>.Shared.Rent(headerMax + payloadMax);

            error = DecodeObject(encodedHeader, _buffer.AsMemory(0, headerMax), out int headerLength, out Header);
            if (error != TokenError.None)
            {
                return error;
            }
            if (headerLength > Limits.MaxHeader)
            {
                return TokenError.TokenTooLarge;
            }
            _buffer.AsSpan(0, headerLength).CopyTo(output);
            HeaderLength = headerLength;

            error = DecodeObject(encodedPayload, _buffer.AsMemory(headerMax, payloadMax), out int payloadLength, out Payload);
            if (error != TokenError.None)
            {
                return error;
            }
            _buffer.AsSpan(headerMax, payloadLength).CopyTo(output[headerLength..]);
            PayloadLength = payloadLength;
            return TokenError.None;
        }

        public TokenError DecodeHeaderOnly(ReadOnlySpan<byte> token)
        {
            TokenError error = Split(token, out int dot1, out int dot2);
            if (error != TokenError.None)
            {
                return error;
            }
            int headerMax = Base64Url.GetMaxDecodedLength(dot1);
            if (headerMax > Limits.MaxHeader + 2)
            {
                return TokenError.TokenTooLarge;
            }
            if (token[(dot1 + 1)..dot2].IndexOfAnyExcept(Base64UrlAlphabet) >= 0)
            {
                return TokenError.TokenMalformed;
            }
            _buffer = ArrayPool<byte>.Shared.Rent(headerMax);
            return DecodeObject(token[..dot1], _buffer.AsMemory(0, headerMax), out _, out Header);
        }

        private TokenError Split(ReadOnlySpan<byte> token, out int dot1, out int dot2)
        {
            Token = token;
            dot2 = -1;
            dot1 = token.IndexOf((byte)'.');
            if (dot1 < 0)
            {
                return TokenError.TokenMalformed;
            }
            int next = token[(dot1 + 1)..].IndexOf((byte)'.');
            if (next < 0)
            {
                return TokenError.TokenMalformed;
            }
            dot2 = dot1 + 1 + next;
            if (token[(dot2 + 1)..].IndexOf((byte)'.') >= 0)
            {
                return TokenError.TokenMalformed; // JWE (5 parts) and anything else
            }
            SigningInputLength = dot2;
            return TokenError.None;
        }

        private static TokenError DecodeObject(ReadOnlySpan<byte> encoded, Memory<byte> buffer, out int length,
            out JsonDocument? document)
        {
            document = null;
            if (!TryDecode(encoded, buffer.Span, out length) || length == 0)
            {
                return TokenError.TokenMalformed;
            }

            ReadOnlyMemory<byte> json = buffer[..length];
            if (!Utf8.IsValid(json.Span) || JsonGuard.Check(json.Span) != JsonShape.Object)
            {
                length = 0;
                return TokenError.TokenMalformed; // not an object, or a duplicate member
            }
            document = JsonGuard.Parse(json);
            return TokenError.None;
        }

        public void Dispose()
        {
            Header?.Dispose();
            Payload?.Dispose();
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
        }
    }
}
