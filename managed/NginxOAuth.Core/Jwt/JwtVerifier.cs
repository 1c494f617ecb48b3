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
        : this(error, detail, headerLength, payloadLength, -1)
    {
    }

    public VerifyResult(TokenError error, int detail, int headerLength, int payloadLength, int innerLength)
    {
        Error = error;
        Detail = detail;
        HeaderLength = headerLength;
        PayloadLength = payloadLength;
        InnerLength = innerLength;
    }

    /// <summary>Nested tokens: the length of the inner JWS written after the payload, else -1.</summary>
    public int InnerLength { get; }

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
/// learns nothing): size, decode, alg none, crit, signature, exp, nbf,
/// a provider's checks (iss, typ, exp, lifetime, aud), sub revocation, kid
/// revocation, claim rules, header rules.
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
        if (output.Length < OutputCapacity(policy, token.Length))
        {
            throw new ArgumentException("output must hold OutputCapacity bytes", nameof(output));
        }
        return policy.TokenType switch
        {
            JwtType.Encrypted => VerifyEncrypted(policy, token, now, extraKeySets, ruleValues, output),
            JwtType.Nested => VerifyNested(policy, token, now, extraKeySets, ruleValues, output),
            _ => VerifySigned(policy, token, now, extraKeySets, ruleValues, output),
        };
    }

    /// <summary>
    /// The output a verification needs: the token's length (header and
    /// payload decode shorter), twice that for nested tokens (the inner
    /// JWS follows the inner header and payload).
    /// </summary>
    public static int OutputCapacity(VerificationPolicy policy, int tokenLength) =>
        policy.TokenType == JwtType.Nested ? 2 * tokenLength : tokenLength;

    /// <summary>
    /// auth_jwt_type encrypted: decrypts with the decryption keys, then the
    /// claim checks on the JWE header and the plaintext (which must be a
    /// JSON object). There is no signature: whoever can encrypt to the key
    /// is trusted, so symmetric or key-agreement keys suit this type best.
    /// </summary>
    private static VerifyResult VerifyEncrypted<TValues>(VerificationPolicy policy, ReadOnlySpan<byte> token,
        long now, ReadOnlySpan<KeySet> extraKeySets, TValues ruleValues, Span<byte> output)
        where TValues : IRuleValues
    {
        if (!LooksEncrypted(token))
        {
            return new VerifyResult(TokenError.TypeMismatch, -1, -1, -1);
        }
        DecryptResult decrypted = JweDecryptor.Decrypt(token, policy.KeySets, extraKeySets, output);
        if (decrypted.Error != TokenError.None)
        {
            return new VerifyResult(decrypted.Error, decrypted.Detail, decrypted.HeaderLength, -1);
        }
        int headerLength = decrypted.HeaderLength;
        ReadOnlySpan<byte> header = output[..headerLength];
        ReadOnlySpan<byte> payload = output.Slice(headerLength, decrypted.PlaintextLength);
        if (payload.IsEmpty || payload[0] != (byte)'{' || !Utf8.IsValid(payload))
        {
            return new VerifyResult(TokenError.TokenMalformed, -1, headerLength, -1);
        }

        var parts = new TokenParts();
        try
        {
            if (parts.Load(header, payload) != TokenError.None)
            {
                return new VerifyResult(TokenError.TokenMalformed, -1, headerLength, -1);
            }
            TokenError error = CheckClaims(policy, ref parts, now, ruleValues, out int detail);
            return new VerifyResult(error, detail, headerLength, payload.Length);
        }
        finally
        {
            parts.Dispose();
        }
    }

    /// <summary>
    /// auth_jwt_type nested: a JWE whose "cty" is JWT and whose plaintext
    /// is a JWS, decrypted and then verified like a signed token. The
    /// output holds the inner header, the inner payload and the inner JWS.
    /// </summary>
    private static VerifyResult VerifyNested<TValues>(VerificationPolicy policy, ReadOnlySpan<byte> token,
        long now, ReadOnlySpan<KeySet> extraKeySets, TValues ruleValues, Span<byte> output)
        where TValues : IRuleValues
    {
        if (!LooksEncrypted(token))
        {
            return new VerifyResult(TokenError.TypeMismatch, -1, -1, -1);
        }
        byte[] buffer = ArrayPool<byte>.Shared.Rent(token.Length);
        try
        {
            DecryptResult decrypted = JweDecryptor.Decrypt(token, policy.KeySets, extraKeySets, buffer);
            if (decrypted.Error != TokenError.None)
            {
                return new VerifyResult(decrypted.Error, decrypted.Detail, -1, -1);
            }
            if (!decrypted.ContentIsJwt)
            {
                return new VerifyResult(TokenError.TypeMismatch, -1, -1, -1);
            }
            ReadOnlySpan<byte> inner = buffer.AsSpan(decrypted.HeaderLength, decrypted.PlaintextLength);
            VerifyResult result = VerifySigned(policy, inner, now, extraKeySets, ruleValues, output);
            if (result.HeaderLength < 0 || result.PayloadLength < 0)
            {
                return result;
            }
            int at = result.HeaderLength + result.PayloadLength;
            inner.CopyTo(output[at..]);
            return new VerifyResult(result.Error, result.Detail, result.HeaderLength, result.PayloadLength,
                inner.Length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        }
    }

    private static bool LooksEncrypted(ReadOnlySpan<byte> token)
    {
        Span<Range> parts = stackalloc Range[5];
        return JweDecryptor.Split(token, parts);
    }

    private static VerifyResult VerifySigned<TValues>(VerificationPolicy policy, ReadOnlySpan<byte> token, long now,
        ReadOnlySpan<KeySet> extraKeySets, TValues ruleValues, Span<byte> output)
        where TValues : IRuleValues
    {
        if (output.Length < token.Length)
        {
            throw new ArgumentException("output must hold at least token.Length bytes", nameof(output));
        }

        var parts = new TokenParts();
        try
        {
            TokenError error = parts.Decode(token, output);
            int detail = -1;
            if (error == TokenError.None)
            {
                error = CheckAlgAndCrit(ref parts);
            }
            if (error == TokenError.None && policy.ValidateSignature)
            {
                error = CheckSignature(ref parts, policy.KeySets, extraKeySets, out detail);
            }
            if (error == TokenError.None)
            {
                error = CheckClaims(policy, ref parts, now, ruleValues, out detail);
            }
            return new VerifyResult(error, detail, parts.HeaderLength, parts.PayloadLength);
        }
        finally
        {
            parts.Dispose();
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

        var parts = new TokenParts();
        try
        {
            TokenError error = parts.DecodeHeaderOnly(token);
            if (error == TokenError.None)
            {
                error = CheckAlgAndCrit(ref parts);
            }
            return error != TokenError.None
                ? error
                : CheckSignature(ref parts, keySets, ReadOnlySpan<KeySet>.Empty, out _);
        }
        finally
        {
            parts.Dispose();
        }
    }

    /// <summary>
    /// The checks after the signature, on a header and payload that were
    /// already decoded (and verified) earlier: alg none and crit, exp/nbf at
    /// <paramref name="now"/>, revocation lists, claim and header rules. The
    /// verified-token cache runs this on a hit, so a hit and a miss share one
    /// rule engine. The parts are checked again (malformed JSON is
    /// TokenMalformed) in the same single pass as on a miss.
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

        var parts = new TokenParts();
        try
        {
            if (parts.Load(header, payload) != TokenError.None)
            {
                return new VerifyResult(TokenError.TokenMalformed, -1, -1, -1);
            }
            int detail = -1;
            TokenError error = CheckAlgAndCrit(ref parts);
            if (error == TokenError.None)
            {
                error = CheckClaims(policy, ref parts, now, ruleValues, out detail);
            }
            return new VerifyResult(error, detail, header.Length, payload.Length);
        }
        finally
        {
            parts.Dispose();
        }
    }

    private static TokenError CheckClaims<TValues>(VerificationPolicy policy, ref TokenParts parts, long now,
        TValues ruleValues, out int detail)
        where TValues : IRuleValues
    {
        detail = -1;
        TokenError error = CheckTimes(policy, ref parts, now);
        if (error != TokenError.None)
        {
            return error;
        }

        if (policy.Profile is { } profile)
        {
            error = ProviderChecks.Check(profile, parts.HeaderRoot, parts.PayloadRoot, now, policy.Leeway);
            if (error != TokenError.None)
            {
                return error;
            }
        }

        if (policy.RevokedSubs is { } subs)
        {
            if (!parts.Sub.IsString || subs.Contains(parts.Sub.GetString(parts.Payload)))
            {
                return TokenError.SubRevoked;
            }
        }

        if (policy.RevokedKids is { } kids)
        {
            if (!parts.Kid.IsString || parts.Kid.ValueEquals(parts.Header, ReadOnlySpan<byte>.Empty)
                || kids.Contains(parts.Kid.GetString(parts.Header)))
            {
                return TokenError.KidRevoked;
            }
        }

        // Claim rules first, then header rules, each in configuration order.
        // A part is parsed into a JsonDocument only when a rule reads it.
        error = policy.HasClaimRules
            ? CheckRules(policy.Rules, RuleTarget.Claim, parts.PayloadRoot, ruleValues, out detail)
            : TokenError.None;
        if (error == TokenError.None && policy.HasHeaderRules)
        {
            error = CheckRules(policy.Rules, RuleTarget.Header, parts.HeaderRoot, ruleValues, out detail);
        }
        return error;
    }

    private static TokenError CheckRules<TValues>(Rule[] rules, RuleTarget target, JsonElement root,
        TValues ruleValues, out int detail)
        where TValues : IRuleValues
    {
        detail = -1;
        foreach (Rule rule in rules)
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
                    : outcome == RuleOutcome.MatchLimit ? TokenError.RuleMatchLimit
                    : target == RuleTarget.Claim ? TokenError.ClaimFailed
                    : TokenError.HeaderFailed;
            }
        }
        return TokenError.None;
    }

    private static TokenError CheckAlgAndCrit(ref TokenParts parts)
    {
        if (parts.Alg.ValueEquals(parts.Header, "none"u8))
        {
            return TokenError.AlgNone; // never, whatever the configuration
        }

        // We understand no extension header, so any "crit" is unsupported
        // (RFC 7515 section 4.1.11; an empty list is itself invalid).
        if (parts.Crit.Present)
        {
            return TokenError.CritUnsupported;
        }
        return TokenError.None;
    }

    private static TokenError CheckSignature(ref TokenParts parts, ReadOnlySpan<KeySet> sets1,
        ReadOnlySpan<KeySet> sets2, out int detail)
    {
        detail = -1;
        ReadOnlySpan<byte> headerJson = parts.Header;
        if (!JwsAlgorithms.TryParse(headerJson, parts.Alg, out JwsAlgorithm alg))
        {
            return TokenError.AlgUnsupported;
        }

        MemberValue kid = parts.Kid;
        bool hasKid = kid.Present;
        if (hasKid && !kid.IsString)
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

        ReadOnlySpan<byte> token = parts.Token;
        ReadOnlySpan<byte> signingInput = token[..parts.SigningInputLength];
        ReadOnlySpan<byte> encodedSignature = token[(parts.SigningInputLength + 1)..];
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
        bool kidCandidate = false; // a loaded key with the token's kid fits the alg
        int passes = hasKid ? 2 : 1;
        for (int pass = 0; pass < passes; pass++)
        {
            for (int s = 0; s < sets1.Length + sets2.Length; s++)
            {
                KeySet set = s < sets1.Length ? sets1[s] : sets2[s - sets1.Length];
                foreach (JwsKey key in set.Keys)
                {
                    if (hasKid && (pass == 0 ? !key.HasKid || !kid.ValueEquals(headerJson, key.Kid) : key.HasKid))
                    {
                        continue;
                    }
                    if (!key.CanVerify(alg))
                    {
                        continue;
                    }
                    candidate = true;
                    kidCandidate |= hasKid && pass == 0;
                    if (key.Verify(alg, signingInput, hash, signature))
                    {
                        return TokenError.None;
                    }
                }
            }
        }

        TokenError failed = candidate ? TokenError.BadSignature : TokenError.KeyNotFound;
        if (!kidCandidate && Skipped(sets1, sets2, hasKid, kid, headerJson, candidate) is { } reason)
        {
            detail = (int)reason;
            return TokenError.KeySkipped;
        }
        return failed;
    }

    /// <summary>
    /// Why a key this token needed was not loaded, if one was skipped: a
    /// skipped key with the token's kid (when no loaded key with that kid
    /// could be tried); with no kid in the token and no loaded key to try,
    /// the first skipped key.
    /// </summary>
    private static ConfigError? Skipped(ReadOnlySpan<KeySet> sets1, ReadOnlySpan<KeySet> sets2, bool hasKid,
        MemberValue kid, ReadOnlySpan<byte> headerJson, bool candidate)
    {
        for (int s = 0; s < sets1.Length + sets2.Length; s++)
        {
            KeySet set = s < sets1.Length ? sets1[s] : sets2[s - sets1.Length];
            foreach (SkippedKey skipped in set.Skipped)
            {
                if (hasKid ? skipped.Kid is { } k && kid.ValueEquals(headerJson, k) : !candidate)
                {
                    return skipped.Reason;
                }
            }
        }
        return null;
    }

    private static TokenError CheckTimes(VerificationPolicy policy, ref TokenParts parts, long now)
    {
        // Int128: exp + leeway and nbf - leeway cannot overflow at the ends of the range
        Int128 leeway = policy.Leeway;
        ReadOnlySpan<byte> payload = parts.Payload;
        if (policy.ValidateExp)
        {
            switch (NumericDate.Read(payload, parts.Exp, out long expiry))
            {
                case NumericDateStatus.NotANumber:
                    return TokenError.ExpMissing;
                case NumericDateStatus.OutOfRange:
                    return TokenError.TimeInvalid;
            }
            if (now >= expiry + leeway)
            {
                return TokenError.Expired;
            }
        }

        if (parts.Nbf.Present)
        {
            switch (NumericDate.Read(payload, parts.Nbf, out long notBefore))
            {
                case NumericDateStatus.NotANumber:
                    return TokenError.TokenMalformed;
                case NumericDateStatus.OutOfRange:
                    return TokenError.TimeInvalid;
            }
            if (now < notBefore - leeway)
            {
                return TokenError.NotYetValid;
            }
        }
        return TokenError.None;
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
            return Outcome(rule, Rule.Evaluate(rule.Operator, actual, expected.RootElement, rule.Adjust, rule.Pattern));
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
        return Outcome(rule, Rule.Evaluate(rule.Operator, actual, value.RootElement, rule.Adjust, null));
    }

    private static RuleOutcome Outcome(Rule rule, Truth truth) => truth switch
    {
        Truth.True => rule.Negate ? RuleOutcome.Fail : RuleOutcome.Pass,
        Truth.False => rule.Negate ? RuleOutcome.Pass : RuleOutcome.Fail,
        Truth.Limit => RuleOutcome.MatchLimit,
        _ => RuleOutcome.Fail,
    };

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

    /// <summary>
    /// The decoded header and payload of one token in a pooled buffer, with
    /// the members the checks read located by the same pass that checks the
    /// JSON (<see cref="JsonGuard"/>); a part becomes a JsonDocument only
    /// when a rule needs it.
    /// </summary>
    private ref struct TokenParts
    {
        private byte[]? _buffer;
        private int _payloadStart;
        private JsonDocument? _headerDocument;
        private JsonDocument? _payloadDocument;

        public ReadOnlySpan<byte> Token;
        public int SigningInputLength;

        /// <summary>-1 until the header decoded to a well-formed object.</summary>
        public int HeaderLength;

        /// <summary>-1 until the payload decoded to a well-formed object.</summary>
        public int PayloadLength;

        public MemberValue Alg;
        public MemberValue Kid;
        public MemberValue Crit;
        public MemberValue Exp;
        public MemberValue Nbf;
        public MemberValue Sub;

        public readonly ReadOnlySpan<byte> Header => _buffer.AsSpan(0, Math.Max(HeaderLength, 0));

        public readonly ReadOnlySpan<byte> Payload => _buffer.AsSpan(_payloadStart, Math.Max(PayloadLength, 0));

        public JsonElement HeaderRoot =>
            (_headerDocument ??= JsonGuard.Parse(_buffer.AsMemory(0, HeaderLength))).RootElement;

        public JsonElement PayloadRoot =>
            (_payloadDocument ??= JsonGuard.Parse(_buffer.AsMemory(_payloadStart, PayloadLength))).RootElement;

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
            _payloadStart = headerMax;

            if (!DecodeText(encodedHeader, _buffer.AsSpan(0, headerMax), out int headerLength))
            {
                return TokenError.TokenMalformed;
            }
            error = CheckHeader(headerLength);
            if (error != TokenError.None)
            {
                return error;
            }
            if (headerLength > Limits.MaxHeader)
            {
                HeaderLength = -1;
                return TokenError.TokenTooLarge;
            }
            _buffer.AsSpan(0, headerLength).CopyTo(output);

            if (!DecodeText(encodedPayload, _buffer.AsSpan(headerMax, payloadMax), out int payloadLength))
            {
                return TokenError.TokenMalformed;
            }
            error = CheckPayload(payloadLength);
            if (error != TokenError.None)
            {
                return error;
            }
            _buffer.AsSpan(headerMax, payloadLength).CopyTo(output[headerLength..]);
            return TokenError.None;
        }

        public TokenError DecodeHeaderOnly(ReadOnlySpan<byte> token)
        {
            HeaderLength = -1;
            PayloadLength = -1;
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
            if (!DecodeText(token[..dot1], _buffer.AsSpan(0, headerMax), out int headerLength))
            {
                return TokenError.TokenMalformed;
            }
            return CheckHeader(headerLength);
        }

        // A part: strict base64url of non-empty UTF-8.
        private static bool DecodeText(ReadOnlySpan<byte> encoded, Span<byte> buffer, out int length) =>
            TryDecode(encoded, buffer, out length) && length > 0 && Utf8.IsValid(buffer[..length]);

        /// <summary>Parts decoded earlier (the verified-token cache).</summary>
        public TokenError Load(ReadOnlySpan<byte> header, ReadOnlySpan<byte> payload)
        {
            HeaderLength = -1;
            PayloadLength = -1;
            _buffer = ArrayPool<byte>.Shared.Rent(header.Length + payload.Length);
            _payloadStart = header.Length;
            header.CopyTo(_buffer);
            payload.CopyTo(_buffer.AsSpan(_payloadStart));
            TokenError error = CheckHeader(header.Length);
            return error != TokenError.None ? error : CheckPayload(payload.Length);
        }

        private TokenError CheckHeader(int length)
        {
            if (!Locate(_buffer.AsSpan(0, length), new JsonGuard.MemberNames("alg"u8, "kid"u8, "crit"u8),
                    out Alg, out Kid, out Crit))
            {
                return TokenError.TokenMalformed;
            }
            HeaderLength = length;
            return TokenError.None;
        }

        private TokenError CheckPayload(int length)
        {
            if (!Locate(_buffer.AsSpan(_payloadStart, length), new JsonGuard.MemberNames("exp"u8, "nbf"u8, "sub"u8),
                    out Exp, out Nbf, out Sub))
            {
                return TokenError.TokenMalformed;
            }
            PayloadLength = length;
            return TokenError.None;
        }

        // Well-formed, an object, no repeated member name; and where the
        // three named members are.
        private static bool Locate(ReadOnlySpan<byte> json, JsonGuard.MemberNames names, out MemberValue first,
            out MemberValue second, out MemberValue third)
        {
            Span<MemberValue> found = stackalloc MemberValue[3];
            bool valid = JsonGuard.Check(json, names, found) == JsonShape.Object;
            first = found[0];
            second = found[1];
            third = found[2];
            return valid;
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

        public void Dispose()
        {
            _headerDocument?.Dispose();
            _payloadDocument?.Dispose();
            if (_buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = null;
            }
        }
    }
}
